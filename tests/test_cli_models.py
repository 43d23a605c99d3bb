"""The command line on model presets, op-list files and measurement sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from energaizer.cli import app

runner = CliRunner()
EXAMPLE_OP_LIST = Path(__file__).resolve().parents[1] / "examples" / "workloads" / "llama-layer.json"
MEASUREMENT_HEADER = "model,dtype,batch,seq,phase,attention,gpu,clock_mhz,time_ms,energy_j\n"


def _json(arguments: list[str]) -> dict:
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_default_estimate_says_so():
    result = runner.invoke(app, ["estimate"])
    assert result.exit_code == 0, result.output
    assert "embedded default" in result.stdout


def test_model_estimate_json_contract():
    data = _json(["estimate", "--model", "gpt2", "--batch", "4", "--seq", "256",
                  "--gpu", "a100-pcie-40gb", "--json"])
    assert data["schema"] == "energaizer.estimate/1"
    assert data["source"]["kind"] == "model"
    assert data["source"]["model"] == "gpt2"
    assert data["provenance"]["power_model"] == "calibrated"
    class_sum = sum(item["energy_j"] for item in data["by_class"])
    assert class_sum + data["idle_energy_j"] == pytest.approx(data["energy_j"])
    assert data["steps"] == []
    assert data["uncertainty"]["energy_j_low"] < data["energy_j"] < data["uncertainty"]["energy_j_high"]


def test_gpu_without_measurements_uses_default_calibration():
    data = _json(["estimate", "--model", "gpt2", "--gpu", "l4", "--json"])
    assert data["provenance"]["power_model"] == "default"
    assert "a100-pcie-40gb" in data["provenance"]["calibration"]


def test_gpu_with_a_shipped_fit_uses_it():
    data = _json(["estimate", "--model", "gpt2", "--gpu", "h100-sxm5-80gb", "--json"])
    assert data["provenance"]["power_model"] == "calibrated"
    assert data["provenance"]["calibration"].endswith("h100-sxm5-80gb.json")


def test_clock_and_power_limit():
    fast = _json(["estimate", "--model", "opt-1.3b", "--batch", "8", "--seq", "512",
                  "--gpu", "a100-pcie-40gb", "--json"])
    slow = _json(["estimate", "--model", "opt-1.3b", "--batch", "8", "--seq", "512",
                  "--gpu", "a100-pcie-40gb", "--clock-mhz", "705", "--json"])
    capped = _json(["estimate", "--model", "opt-1.3b", "--batch", "8", "--seq", "512",
                    "--gpu", "a100-pcie-40gb", "--power-limit-w", "120", "--json"])
    assert slow["duration_s"] > fast["duration_s"]
    assert slow["avg_power_w"] < fast["avg_power_w"]
    assert capped["avg_power_w"] <= 120 + 1e-6
    assert capped["gpu"]["clock_mhz"] < fast["gpu"]["clock_mhz"]


def test_clock_above_maximum_rejected():
    result = runner.invoke(app, ["estimate", "--model", "gpt2", "--gpu", "t4", "--clock-mhz", "5000"])
    assert result.exit_code == 2
    assert "above the maximum SM clock" in result.output


def test_op_list_workload():
    data = _json(["estimate", "--workload", str(EXAMPLE_OP_LIST), "--gpu", "h100-sxm5-80gb", "--json"])
    assert data["source"]["kind"] == "workload"
    assert data["energy_j"] > 0


def test_unknown_model_lists_presets():
    result = runner.invoke(app, ["estimate", "--model", "lama-3.1-8b"])
    assert result.exit_code == 2
    assert "llama-3.1-8b" in result.output


def test_validate_and_calibrate_from_file(tmp_path):
    rows = [
        ("gpt2", 1, 128, 8.0, 0.5), ("gpt2", 8, 512, 20.0, 3.1), ("gpt2", 16, 512, 38.0, 6.2),
        ("bert-base", 1, 128, 6.0, 0.4), ("bert-base", 8, 512, 18.0, 2.9),
        ("bert-base", 32, 512, 60.0, 10.5),
    ]
    path = tmp_path / "set.csv"
    path.write_text(MEASUREMENT_HEADER + "".join(
        f"{model},bf16,{batch},{seq},prefill,default,a100-pcie-40gb,900,{time},{energy}\n"
        for model, batch, seq, time, energy in rows))
    summary = _json(["validate", str(path), "--json"])
    assert summary["rows"] == 6
    assert set(summary["per_model"]) == {"gpt2", "bert-base"}
    assert summary["time_mape"] >= 0
    output = tmp_path / "fit.json"
    fitted = _json(["calibrate", "--from", str(path), "-o", str(output), "--json"])
    assert output.is_file()
    assert fitted["validation"]["rows"] == 6
    assert json.loads(output.read_text())["validation"]["method"] == "leave-one-model-out"
    again = _json(["validate", str(path), "--calibration", str(output), "--json"])
    assert again["rows"] == 6


def test_calibrate_from_file_reports_progress(tmp_path):
    from energaizer.calibrate.offline import calibrate_from_file

    rows = [("gpt2", 1, 128, 8.0, 0.5), ("gpt2", 8, 512, 20.0, 3.1),
            ("bert-base", 1, 128, 6.0, 0.4), ("bert-base", 8, 512, 18.0, 2.9)]
    path = tmp_path / "set.csv"
    path.write_text(MEASUREMENT_HEADER + "".join(
        f"{model},bf16,{batch},{seq},prefill,default,a100-pcie-40gb,900,{time},{energy}\n"
        for model, batch, seq, time, energy in rows))
    seen = []
    calibrate_from_file(path, output=tmp_path / "fit.json",
                        progress=lambda done, total: seen.append((done, total)))
    # The full fit, then one fit per held-out model.
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]


def test_validate_bad_file(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("nothing,here\n1,2\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "missing columns" in result.output


def test_serving_estimate_through_estimate():
    data = _json(["estimate", "--serving", "--model", "llama-3.1-8b", "--gpu", "h100-sxm5-80gb",
                  "--batch", "16", "--prompt-tokens", "500", "--output-tokens", "200", "--json"])
    assert data["source"]["kind"] == "serving"
    for key in ("energy_per_request_j", "prefill_energy_j", "decode_energy_j",
                "energy_per_output_token_j", "output_tokens_per_s", "time_to_first_token_s",
                "time_per_output_token_s"):
        assert data[key] > 0, key
    assert data["prefill_energy_j"] + data["decode_energy_j"] == pytest.approx(
        data["energy_per_request_j"])


def test_spec_without_serving_flag_rejected(tmp_path):
    result = runner.invoke(app, ["estimate", str(tmp_path / "spec.yaml")])
    assert result.exit_code == 2
    assert "--serving" in result.output
