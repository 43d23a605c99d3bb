"""A dask scheduler address that cannot be used gives an input error, not a traceback."""

from __future__ import annotations

import pytest

from energaizer.errors import InputError
from energaizer.sweep import run_sweep
from energaizer.sweep.grid import grid_from_mapping

pytest.importorskip("distributed")


def test_malformed_scheduler_address_rejected():
    grid = grid_from_mapping({"models": ["gpt2"], "gpus": ["a10"], "batch": [1], "seq": [64]})
    with pytest.raises(InputError, match="Cannot connect to the dask scheduler at 'notaurl'"):
        run_sweep(grid, executor="dask", scheduler_address="notaurl")
