"""Serving estimates against the ML.ENERGY v3 H100 measurements of Llama-3.1-8B."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]

sys.path.insert(0, str(REPOSITORY / "calibration"))

import validate_serving

pytestmark = pytest.mark.shared_data
BATCHES = (8, 64, 256)


@pytest.fixture(scope="module")
def llama_rows(shared_data):
    csv_path = shared_data / "measurements" / "mlenergy" / "mlenergy_v3_h100_llm_serving.csv"
    frame = validate_serving.serving_rows(csv_path)
    frame = frame[(frame["preset"] == "llama-3.1-8b") & frame["max_num_seqs"].isin(BATCHES)]
    models = {}
    return [validate_serving.compare_row(row, validate_serving.ASSUMED_PROMPT_TOKENS,
                                         "calibration", models) for _, row in frame.iterrows()]


def test_rows_found(llama_rows):
    assert [row["max_num_seqs"] for row in llama_rows] == list(BATCHES)


def test_token_energy_trend(llama_rows):
    estimated = [row["estimated_token_j"] for row in llama_rows]
    measured = [row["measured_token_j"] for row in llama_rows]
    assert estimated[0] > estimated[1] > estimated[2]
    assert measured[0] > measured[1] > measured[2]


@pytest.mark.xfail(strict=True, reason=(
    "Estimates run well over the measured energy per token at batch 8, 64 and 256 with "
    "the default H100 calibration (python calibration/validate_serving.py prints the "
    "numbers); the carried-over A100 fit and the assumed prompt length are the suspects."))
@pytest.mark.parametrize("index", range(len(BATCHES)))
def test_token_energy_within_15_percent(llama_rows, index):
    assert abs(llama_rows[index]["token_energy_error"]) <= 0.15
