"""`energaizer validate`: unreadable inputs and the in-sample note."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from energaizer.calibrate.validate import fitted_file_name, validate_file
from energaizer.cli import app

HEADER = "model,dtype,batch,seq,phase,attention,gpu,clock_mhz,time_ms,energy_j\n"
# One A10 row: a shipped calibration exists for the A10 and records its fit file.
A10_ROW = "gpt2,fp32,1,128,prefill,eager,a10,900,5.0,0.4\n"
A10_FIT_FILE = "a10_900mhz.csv"


def _measurements(folder, name):
    path = folder / name
    path.write_text(HEADER + A10_ROW)
    return path


def test_validate_folder_rejected(tmp_path):
    result = CliRunner().invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert f"{tmp_path} is a folder; give a measurement-set CSV file" in result.output
    assert "Traceback" not in result.output


def test_validate_missing_file(tmp_path):
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "none.csv")])
    assert result.exit_code == 2, result.output
    assert "measurement set not found" in result.output


@pytest.mark.parametrize("fitted_on, name", [
    ({"file": "EnergAIzer ISPASS 2026 measurements (a10_900mhz.csv)"}, "a10_900mhz.csv"),
    ({"file": "/data/sets/mine.csv"}, "mine.csv"),
    ({"file": "mine.csv"}, "mine.csv"),
    ({"points": 40, "source": "simulated"}, ""),
    ({}, ""),
])
def test_fitted_file_name(fitted_on, name):
    assert fitted_file_name(fitted_on) == name


def test_validate_in_sample_rows(tmp_path):
    summary = validate_file(_measurements(tmp_path, A10_FIT_FILE))
    in_sample = summary["in_sample"]
    assert in_sample["rows"] == 1
    assert in_sample["fitted_on"] == A10_FIT_FILE
    assert in_sample["gpus"] == ["a10"]
    assert in_sample["held_out"]["a10"]["method"] == "leave-one-model-out"
    assert in_sample["held_out"]["a10"]["energy_mape"] > 0


def test_validate_other_file_not_in_sample(tmp_path):
    assert validate_file(_measurements(tmp_path, "new_runs.csv"))["in_sample"] is None


def test_cli_validate_prints_in_sample_note(tmp_path):
    result = CliRunner().invoke(app, ["validate", str(_measurements(tmp_path, A10_FIT_FILE))])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "Note: 1 of 1 rows are in-sample." in output
    assert f"The calibration of a10 was fitted on {A10_FIT_FILE}" in output
    assert "Held-out errors stored with the a10 calibration (leave-one-model-out)" in output


def test_cli_validate_no_note_for_other_file(tmp_path):
    result = CliRunner().invoke(app, ["validate", str(_measurements(tmp_path, "new.csv"))])
    assert result.exit_code == 0, result.output
    assert "in-sample" not in result.output
