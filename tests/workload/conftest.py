"""The slow marker of the workload tests (the root conftest gives an empty template cache).

Tests marked `slow` capture the largest presets and run only when ENERGAIZER_SLOW_TESTS=1,
which keeps the folder at about a minute on two CPU cores.
"""

from __future__ import annotations

import os

import pytest

SLOW_ENV = "ENERGAIZER_SLOW_TESTS"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"slow: captures a large model; runs only with {SLOW_ENV}=1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(SLOW_ENV) == "1":
        return
    skip = pytest.mark.skip(reason=f"slow capture; set {SLOW_ENV}=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
