"""A pytest plugin for energy budgets in a team's own CI.

Enable it with `pytest -p energaizer.pytest_plugin` or `pytest_plugins =
["energaizer.pytest_plugin"]` in a conftest.py. The `energy_budget` fixture returns
`assert_within_budget`, which fails the test with the fields that grew:

    def test_chat_energy(energy_budget):
        estimate = estimate_serving(ServingSpec(model="llama-3.1-8b", batch=64))
        energy_budget(estimate, energy_per_request_j=120.0)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from energaizer.budget import check_budget


def assert_within_budget(estimate: Any, **limits: float) -> None:
    """Assert each named field of `estimate` (an object with `to_dict()`, or a dict) is at
    most its limit; the assertion message lists every field over."""
    data = estimate.to_dict() if hasattr(estimate, "to_dict") else dict(estimate)
    result = check_budget(data, {name: float(value) for name, value in limits.items()})
    over = [f"{row['field']} {row['value']:.6g} > {row['limit']:.6g} ({row['change']:+.1%})"
            for row in result.failures()]
    assert not over, "Over energy budget: " + "; ".join(over)


@pytest.fixture
def energy_budget() -> Callable[..., None]:
    """Return `assert_within_budget`."""
    return assert_within_budget
