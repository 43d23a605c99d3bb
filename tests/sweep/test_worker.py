"""Sweep workers share workloads between items and still match single estimates."""

from __future__ import annotations

import itertools

import pytest

import energaizer
from energaizer.errors import EnergaizerError
from energaizer.sweep import run_sweep, worker
from energaizer.sweep.grid import grid_from_mapping
from energaizer.sweep.run import WORKLOAD_KEYS, _chunks

# gpt2 allows 1024 positions, so seq 2048 fails. The A100-SXM4-80GB's maximum SM clock
# is 1410 MHz, so 1500 MHz fails on it but runs on the A10, where batch 4 also hits the
# power limit.
MIXED_GRID = {
    "models": ["gpt2", "no-such-model"],
    "gpus": ["a100-sxm4-80gb", "a10"],
    "batch": [1, 4],
    "seq": [128, 2048],
    "clocks_mhz": [None, 900, 1500],
}
RELATIVE_TOLERANCE = 1e-9


def _public_row(item):
    """Return energy, duration and power from energaizer.estimate, or the error text."""
    try:
        result = energaizer.estimate(**item)
    except EnergaizerError as error:
        return f"{type(error).__name__}: {error}"
    return (result.energy_j, result.duration_s, result.avg_power_w, result.provenance,
            result.gpu.clock_mhz)


def test_rows_match_single_estimates():
    grid = grid_from_mapping(dict(MIXED_GRID))
    result = run_sweep(grid, workers=1)
    kinds = {"ok": 0, "throttled": 0, "clocked": 0, "failed": 0}
    for row, item in zip(result.rows, grid.items(), strict=True):
        expected = _public_row(item)
        if isinstance(expected, str):
            assert row["error"] == expected, item
            kinds["failed"] += 1
            continue
        energy_j, duration_s, avg_power_w, provenance, clock_mhz = expected
        assert row["error"] is None, item
        assert row["energy_j"] == pytest.approx(energy_j, rel=RELATIVE_TOLERANCE), item
        assert row["duration_s"] == pytest.approx(duration_s, rel=RELATIVE_TOLERANCE), item
        assert row["avg_power_w"] == pytest.approx(avg_power_w, rel=RELATIVE_TOLERANCE), item
        assert row["clock_used_mhz"] == pytest.approx(clock_mhz, rel=RELATIVE_TOLERANCE), item
        kinds["ok"] += 1
        kinds["clocked"] += item["clock_mhz"] is not None
        kinds["throttled"] += any("Power capping" in text for text in provenance["warnings"])
    # The grid must keep covering each kind of item, or the comparison proves less.
    assert kinds["ok"] >= 8
    assert kinds["clocked"] >= 4
    assert kinds["throttled"] >= 1
    assert kinds["failed"] >= 8
    assert result.failed_items == kinds["failed"]


def test_workload_built_once_per_chunk(monkeypatch):
    built = []
    original = worker.model_workload

    def counting(model, **shape):
        built.append((model, shape["batch"], shape["seq"]))
        return original(model, **shape)

    monkeypatch.setattr(worker, "model_workload", counting)
    items = [
        {"model": "gpt2", "gpu": gpu, "batch": 2, "seq": 64, "clock_mhz": clock}
        for gpu, clock in itertools.product(["a100-sxm4-80gb", "h100-sxm5-80gb"],
                                            [None, 800.0, 1000.0])
    ]
    rows = worker.estimate_chunk(items, None)
    assert built == [("gpt2", 2, 64)]
    assert all(row["error"] is None for row in rows)
    assert len({row["energy_j"] for row in rows}) == len(items)


def test_other_options_take_public_path(monkeypatch):
    item = {"model": "gpt2", "gpu": "a10", "batch": 1, "seq": 64, "power_limit_w": 100.0}

    def fail(*args, **kwargs):
        raise AssertionError("an item with power_limit_w took the shared path")

    monkeypatch.setattr(worker, "_shared_row", fail)
    (row,) = worker.estimate_chunk([item], None)
    assert row["error"] is None
    assert row["energy_j"] == energaizer.estimate(**item).energy_j


def test_invalid_item_reports_public_error():
    item = {"model": "gpt2", "gpu": "a10", "batch": 0, "seq": 64, "clock_mhz": None}
    (row,) = worker.estimate_chunk([item], None)
    assert row["error"] == "InputError: batch must be a whole number of at least 1, got 0."


def test_chunks_keep_workload_groups_whole():
    grid = grid_from_mapping({
        "models": ["gpt2", "opt-1.3b"], "gpus": ["a10", "t4", "l4"], "batch": [1, 2, 4],
        "seq": [64, 128], "clocks_mhz": [None, 900, 1000, 1100],
    })
    items = grid.items()
    chunks = _chunks(list(range(len(items))), items, workers=2)
    assert max(len(chunk) for chunk in chunks) <= len(items) / (2 * 4)
    assert sorted(itertools.chain.from_iterable(chunks)) == list(range(len(items)))
    chunk_of_item = {index: number for number, chunk in enumerate(chunks) for index in chunk}
    groups: dict[tuple, set[int]] = {}
    for index, item in enumerate(items):
        key = tuple(item[name] for name in WORKLOAD_KEYS)
        groups.setdefault(key, set()).add(chunk_of_item[index])
    assert len(groups) == 2 * 3 * 2
    assert all(len(chunk_numbers) == 1 for chunk_numbers in groups.values())


def test_chunks_split_group_larger_than_chunk():
    items = [{"model": "gpt2", "gpu": "a10", "clock_mhz": float(clock)}
             for clock in range(500, 1500, 10)]
    chunks = _chunks(list(range(len(items))), items, workers=8)
    assert [len(chunk) for chunk in chunks] == [4] * 25
    assert list(itertools.chain.from_iterable(chunks)) == list(range(len(items)))
