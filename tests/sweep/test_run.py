"""Sweeps run locally: same results in a process pool, cache reuse, failed items."""

from __future__ import annotations

import pandas as pd
import pytest

import energaizer
from energaizer.sweep import run, run_sweep
from energaizer.sweep.cache import ResultCache
from energaizer.sweep.grid import grid_from_mapping
from energaizer.sweep.output import efficient_frontier, write_results


def _values(result) -> pd.DataFrame:
    return result.frame().drop(columns=["error"])


def test_serial_rows_match_estimate(small_grid):
    result = run_sweep(small_grid, workers=1)
    assert result.failed_items == 0
    first = result.rows[0]
    direct = energaizer.estimate(model="gpt2", batch=1, seq=128, gpu="a100-sxm4-80gb")
    assert first["energy_j"] == direct.energy_j
    assert first["energy_per_item_j"] == direct.energy_j
    assert result.rows[3]["time_per_item_s"] == result.rows[3]["duration_s"] / 4


def test_process_pool_matches_serial(small_grid):
    serial = run_sweep(small_grid, workers=1)
    pooled = run_sweep(small_grid, workers=2)
    pd.testing.assert_frame_equal(_values(pooled), _values(serial))


def test_rerun_uses_cache(small_grid, tmp_path, monkeypatch):
    cache = ResultCache(tmp_path / "cache")
    first = run_sweep(small_grid, workers=1, cache=cache)
    assert first.cached_items == 0

    def fail(*args, **kwargs):
        raise AssertionError("a cached item was estimated again")

    monkeypatch.setattr(run, "estimate_chunk", fail)
    second = run_sweep(small_grid, workers=1, cache=cache)
    assert second.cached_items == len(first.rows)
    pd.testing.assert_frame_equal(_values(second), _values(first))


def test_cache_key_changes_with_calibration(small_grid, tmp_path):
    from energaizer.sweep.cache import calibration_digest, item_key

    item = small_grid.items()[0]
    other = tmp_path / "calibration.json"
    other.write_text("{}")
    assert item_key(item, calibration_digest(None)) != item_key(item, calibration_digest(other))
    assert item_key(item, "a") == item_key(dict(item), "a")


def test_failed_item_reported_and_rest_finish(tmp_path):
    grid = grid_from_mapping({"models": ["gpt2", "no-such-model"], "batch": [1], "seq": [64],
                              "gpus": ["a100-sxm4-80gb"]})
    cache = ResultCache(tmp_path / "cache")
    result = run_sweep(grid, workers=2, cache=cache)
    assert result.failed_items == 1
    good, bad = result.rows
    assert good["error"] is None
    assert good["energy_j"] > 0
    assert "no-such-model" in bad["error"]
    # Failures are not cached, so a fixed environment can retry them.
    assert run_sweep(grid, workers=1, cache=cache).cached_items == 1


def test_outputs_written(small_grid, tmp_path):
    paths = write_results(run_sweep(small_grid, workers=1), tmp_path / "out")
    for path in paths.values():
        assert path.stat().st_size > 0
    frame = pd.read_parquet(paths["parquet"])
    assert len(frame) == 8
    assert frame["on_frontier"].any()
    assert len(pd.read_csv(paths["csv"])) == 8


def test_frontier_marks_undominated_rows():
    frame = pd.DataFrame({
        "time_per_item_s": [1.0, 2.0, 3.0, 2.5, None],
        "energy_per_item_j": [5.0, 3.0, 1.0, 4.0, 0.1],
    })
    assert efficient_frontier(frame).tolist() == [True, True, True, False, False]


def test_frontier_per_model():
    frame = pd.DataFrame({
        "model": ["small", "small", "large", "large"],
        "time_per_item_s": [1.0, 2.0, 10.0, 20.0],
        "energy_per_item_j": [1.0, 2.0, 50.0, 40.0],
    })
    assert efficient_frontier(frame).tolist() == [True, False, True, True]
    assert efficient_frontier(frame, by=None).tolist() == [True, False, False, False]


def test_unknown_executor_rejected(small_grid):
    with pytest.raises(energaizer.errors.InputError, match="executor"):
        run_sweep(small_grid, executor="ray")
