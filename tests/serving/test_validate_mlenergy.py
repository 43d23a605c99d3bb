"""Serving estimates against the ML.ENERGY v3 H100 measurements of Llama-3.1-8B.

The shipped H100 calibration was fitted on the file's Llama-3.x-70B rows only, so the
Llama-3.1-8B rows checked here are held out.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]

sys.path.insert(0, str(REPOSITORY / "calibration"))

import validate_serving

from energaizer.calibrate.profile import load_calibration

pytestmark = pytest.mark.shared_data
BATCHES = (8, 64, 256)


@pytest.fixture(scope="module")
def rows(shared_data):
    csv_path = shared_data / "measurements" / "mlenergy" / "mlenergy_v3_h100_llm_serving.csv"
    return validate_serving.serving_rows(csv_path)


@pytest.fixture(scope="module")
def calibration():
    return load_calibration(validate_serving.CALIBRATION_PATH)


@pytest.fixture(scope="module")
def llama_rows(rows, calibration):
    chosen = rows[(rows["preset"] == "llama-3.1-8b") & rows["max_num_seqs"].isin(BATCHES)]
    workload = calibration.fitted_on["serving_workload"]
    return [validate_serving.compare_row(row, calibration, workload["prompt_tokens"],
                                         workload["prefix_cache_hit_rate"])
            for _, row in chosen.iterrows()]


def test_rows_found(llama_rows):
    assert [row["max_num_seqs"] for row in llama_rows] == list(BATCHES)


def test_fit_excludes_llama_8b(rows, calibration, llama_rows):
    fit_models = set(calibration.fitted_on["models"])
    assert "meta-llama/Llama-3.1-8B-Instruct" not in fit_models
    assert fit_models == set(rows[rows["fit_set"]]["model_id"])
    assert [row["set"] for row in llama_rows] == ["held out"] * len(BATCHES)


def test_token_energy_trend(llama_rows):
    estimated = [row["estimated_token_j"] for row in llama_rows]
    measured = [row["measured_token_j"] for row in llama_rows]
    assert estimated[0] > estimated[1] > estimated[2]
    assert measured[0] > measured[1] > measured[2]


@pytest.mark.parametrize("index", range(len(BATCHES)))
def test_token_energy_within_15_percent(llama_rows, index):
    row = llama_rows[index]
    assert abs(row["token_j_error"]) <= 0.15, (
        f"batch {row['max_num_seqs']}: estimated {row['estimated_token_j']:.4f} J per token, "
        f"measured {row['measured_token_j']:.4f} J")


def test_shipped_scales_match_refit(rows, calibration):
    """The power scales in the shipped file are what the fit gives on the fit rows."""
    workload = calibration.fitted_on["serving_workload"]
    base = validate_serving.carried_calibration(
        validate_serving.load_profile(validate_serving.GPU_PROFILE), validate_serving.REFERENCE_GPU)
    dram_scale, core_scale = validate_serving.fit_power_scales(
        rows[rows["fit_set"]], base, workload["prompt_tokens"],
        workload["prefix_cache_hit_rate"])
    assert dram_scale == pytest.approx(calibration.fitted_on["dram_scale"], rel=1e-6)
    assert core_scale == pytest.approx(calibration.fitted_on["core_scale"], rel=1e-6)


def test_other_family_held_out_within_25_percent(rows, calibration):
    workload = calibration.fitted_on["serving_workload"]
    gemma = rows[rows["model_id"].str.startswith("google/gemma-3")]
    assert set(gemma["task"]) == {"lm-arena-chat"}
    results = [validate_serving.compare_row(row, calibration, workload["prompt_tokens"],
                                            workload["prefix_cache_hit_rate"])
               for _, row in gemma.iterrows()]
    assert len(results) == 16
    assert {item["set"] for item in results} == {"held out"}
    worst = max(results, key=lambda item: abs(item["token_j_error"]))
    assert abs(worst["token_j_error"]) <= 0.25, worst


def test_fp8_rows_compared_as_fp8(rows, calibration):
    fp8 = rows[rows["precision"] == "fp8"]
    assert set(fp8["model_id"]) == {"meta-llama/Llama-3.1-405B-Instruct-FP8"}
    workload = calibration.fitted_on["serving_workload"]
    row = fp8.iloc[0]
    spec = validate_serving.row_spec(row, workload["prompt_tokens"],
                                     workload["prefix_cache_hit_rate"])
    assert spec.dtype == "fp8"
    assert spec.num_gpus == 8
