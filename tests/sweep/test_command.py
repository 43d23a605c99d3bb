"""`energaizer sweep` through the command line."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from energaizer.cli import app


def test_sweep_command_writes_results(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("models: [gpt2, no-such-model]\ngpus: [t4]\nbatch: [1, 2]\nseq: [64]\n")
    arguments = ["sweep", str(grid), "-o", str(tmp_path / "out"), "--workers", "1",
                 "--cache-dir", str(tmp_path / "cache"), "--json"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["items"] == 4
    assert summary["failed_items"] == 2
    assert summary["errors"][0]["item"]["model"] == "no-such-model"
    assert (tmp_path / "out" / "results.parquet").is_file()

    again = CliRunner().invoke(app, arguments)
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["cached_items"] == 2


def test_sweep_command_invalid_grid(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("models: [gpt2]\nbatch: [0]\n")
    result = CliRunner().invoke(app, ["sweep", str(grid), "-o", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "at least 1" in result.output
