"""Estimate a grid of configurations in parallel, with results cached by content."""

from energaizer.sweep.grid import SweepGrid, load_grid
from energaizer.sweep.run import SweepResult, run_sweep

__all__ = ["SweepGrid", "SweepResult", "load_grid", "run_sweep"]
