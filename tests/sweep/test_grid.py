"""Sweep grid files: expansion and rejection of invalid values."""

from __future__ import annotations

import pytest

from energaizer.errors import InputError
from energaizer.sweep.grid import grid_from_mapping, load_grid


def test_grid_expands_product(small_grid):
    items = small_grid.items()
    assert len(items) == 2 * 2 * 1 * 2
    assert items[0] == {
        "model": "gpt2", "phase": "prefill", "dtype": "bf16", "attention": "default",
        "gpu": "a100-sxm4-80gb", "batch": 1, "seq": 128, "clock_mhz": None,
    }
    assert {item["clock_mhz"] for item in items} == {None, 1000.0}


def test_single_values_become_lists():
    grid = grid_from_mapping({"models": "gpt2", "batch": 2, "gpus": "t4"})
    assert grid.models == ["gpt2"]
    assert grid.batch == [2]
    assert grid.gpus == ["t4"]


@pytest.mark.parametrize("document, message", [
    ({"models": ["gpt2"], "batches": [1]}, "unknown key"),
    ({"gpus": ["t4"]}, "either 'models' or 'traces'"),
    ({"models": ["gpt2"], "traces": "x"}, "either 'models' or 'traces'"),
    ({"models": ["gpt2"], "batch": [0]}, "at least 1"),
    ({"models": ["gpt2"], "batch": [True]}, "at least 1"),
    ({"models": ["gpt2"], "dtypes": ["fp8"]}, "'dtypes' value 'fp8' is invalid"),
    ({"models": ["gpt2"], "clocks_mhz": [-5]}, "positive, finite numbers in MHz"),
    ({"models": ["gpt2"], "clocks_mhz": [float("nan")]}, "positive, finite numbers in MHz"),
    ({"models": ["gpt2"], "clocks_mhz": [float("inf")]}, "positive, finite numbers in MHz"),
    ({"models": ["gpt2"], "clocks_mhz": ["fast"]}, "positive, finite numbers in MHz"),
    ({"models": []}, "'models' is empty"),
    ({"models": ["gpt2"], "gpus": [["a10"]]}, "'gpus' values must be single values"),
])
def test_invalid_grid_rejected(document, message):
    with pytest.raises(InputError, match=message):
        grid_from_mapping(document)


@pytest.mark.parametrize("key, value", [
    ("models", ["gpt2", None]), ("models", None), ("gpus", ["a10", None]), ("gpus", None),
    ("batch", [1, None]), ("seq", [None]), ("dtypes", [None]), ("phases", ["prefill", None]),
    ("attention", [None]),
])
def test_null_entry_rejected(key, value):
    document = {"models": ["gpt2"], key: value}
    with pytest.raises(InputError, match=f"'{key}' contains null"):
        grid_from_mapping(document)


def test_null_trace_rejected(tmp_path):
    (tmp_path / "a.json").write_text("[]")
    with pytest.raises(InputError, match="'traces' contains null"):
        grid_from_mapping({"traces": ["a.json", None]}, base=tmp_path)


def test_null_clock_is_default():
    grid = grid_from_mapping({"models": ["gpt2"], "clocks_mhz": [None, 900]})
    assert grid.clocks_mhz == [None, 900.0]


def test_null_entry_rejected_from_yaml(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("models: [gpt2]\ngpus: [a10, null]\n")
    with pytest.raises(InputError, match=f"{path}: 'gpus' contains null"):
        load_grid(path)


def test_trace_folder_expands(tmp_path):
    (tmp_path / "a.json").write_text("[]")
    (tmp_path / "b.json.gz").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("")
    grid = grid_from_mapping({"traces": ".", "gpus": ["t4"]}, base=tmp_path)
    assert [item["trace"] for item in grid.items()] == [
        str(tmp_path / "a.json"), str(tmp_path / "b.json.gz"),
    ]


def test_trace_grid_rejects_model_keys(tmp_path):
    (tmp_path / "a.json").write_text("[]")
    with pytest.raises(InputError, match="apply to models"):
        grid_from_mapping({"traces": ".", "batch": [1]}, base=tmp_path)


def test_load_grid_errors(tmp_path):
    with pytest.raises(InputError, match="Cannot read sweep grid"):
        load_grid(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [gpt2\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_grid(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- gpt2\n")
    with pytest.raises(InputError, match="mapping"):
        load_grid(listed)
