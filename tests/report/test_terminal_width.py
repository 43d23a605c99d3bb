"""The terminal estimate stays readable on a narrow console."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from energaizer import estimate
from energaizer.report.terminal import render_estimate


@pytest.fixture(scope="module")
def result():
    return estimate(model="gpt2", batch=2, seq=128, gpu="a10")


@pytest.mark.parametrize("width", [80, 100])
def test_top_ops_numbers_kept_whole(result, width):
    buffer = io.StringIO()
    render_estimate(result, Console(file=buffer, width=width, color_system=None))
    lines = buffer.getvalue().splitlines()
    header = next(line for line in lines if "avg power W" in line)
    assert "time s" in header
    assert "energy J" in header
    assert all(len(line) <= width for line in lines)
    for kernel in result.top_kernels:
        assert any(f"{kernel.energy_j:,.3f}" in line for line in lines)
