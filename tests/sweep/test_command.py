"""`energaizer sweep` through the command line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from energaizer.cli import app
from energaizer.sweep import run_sweep
from energaizer.sweep.grid import load_grid

REPOSITORY = Path(__file__).resolve().parents[2]


def test_sweep_command_writes_results(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("models: [gpt2, no-such-model]\ngpus: [t4]\nbatch: [1, 2]\nseq: [64]\n")
    arguments = ["sweep", str(grid), "-o", str(tmp_path / "out"), "--workers", "1",
                 "--cache-dir", str(tmp_path / "cache"), "--json"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["items"] == 4
    assert summary["failed_items"] == 2
    assert summary["errors"][0]["item"]["model"] == "no-such-model"
    assert len(summary["error_groups"]) == 1
    assert summary["error_groups"][0]["items"] == 2
    assert "2 of 4 sweep items failed" in result.stderr
    assert (tmp_path / "out" / "results.parquet").is_file()

    again = CliRunner().invoke(app, arguments)
    assert again.exit_code == 1, again.output
    assert json.loads(again.stdout)["cached_items"] == 2


def test_sweep_command_clean_run_exits_zero(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("models: [gpt2]\ngpus: [t4]\nbatch: [1]\nseq: [64]\n")
    result = CliRunner().invoke(app, ["sweep", str(grid), "-o", str(tmp_path / "out"),
                                      "--workers", "1", "--no-cache"])
    assert result.exit_code == 0, result.output
    assert "1 items (0 from cache, 0 failed)" in result.output


def test_sweep_command_groups_identical_errors(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("models: [no-such-model, other-model]\ngpus: [t4]\nbatch: [1, 2, 4]\n"
                    "seq: [64]\n")
    result = CliRunner().invoke(app, ["sweep", str(grid), "-o", str(tmp_path / "out"),
                                      "--workers", "1", "--no-cache"])
    assert result.exit_code == 1, result.output
    assert "6 items (0 from cache, 6 failed)" in result.stdout
    assert result.stdout.count("3 item(s) failed: ") == 2
    assert result.stdout.count("Unknown model preset 'no-such-model'") == 1
    assert result.stdout.count("Unknown model preset 'other-model'") == 1
    assert "6 of 6 sweep items failed" in result.stderr


def test_sweep_command_output_is_file(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("models: [gpt2]\nseq: [64]\n")
    existing = tmp_path / "afile"
    existing.write_text("")
    result = CliRunner().invoke(app, ["sweep", str(grid), "-o", str(existing), "--no-cache"])
    assert result.exit_code == 2, result.output
    assert f"Output folder {existing} is an existing file" in result.output


def test_example_grid_items_all_estimate():
    # One item per model and sequence length covers every shape limit the example can hit.
    grid = load_grid(REPOSITORY / "examples" / "sweep-grid.yaml")
    assert len(grid.items()) == 48
    grid.gpus, grid.batch, grid.clocks_mhz = grid.gpus[:1], [1], [None]
    result = run_sweep(grid, workers=1)
    assert result.failed_items == 0, [row["error"] for row in result.rows]


def test_sweep_command_invalid_grid(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("models: [gpt2]\nbatch: [0]\n")
    result = CliRunner().invoke(app, ["sweep", str(grid), "-o", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "at least 1" in result.output
