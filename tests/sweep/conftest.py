"""Small grids shared by the sweep tests."""

from __future__ import annotations

import pytest

from energaizer.sweep.grid import grid_from_mapping

SMALL_GRID = {
    "models": ["gpt2"],
    "gpus": ["a100-sxm4-80gb", "h100-sxm5-80gb"],
    "batch": [1, 4],
    "seq": [128],
    "clocks_mhz": [None, 1000],
}


@pytest.fixture
def small_grid():
    return grid_from_mapping(dict(SMALL_GRID))
