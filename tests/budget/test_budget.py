"""Pre-flight checks, budget and baseline checks, history and the pytest fixture."""

from __future__ import annotations

import json
import math
import statistics
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from energaizer import history
from energaizer.budget import Preflight, check_baseline, parse_tolerance
from energaizer.cli import app
from energaizer.errors import InputError
from energaizer.pytest_plugin import assert_within_budget
from energaizer.serving import ServingSpec, estimate_serving

pytest_plugins = ["energaizer.pytest_plugin"]
SPEC = ServingSpec(model="llama-3.1-8b", gpu="h100-sxm5-80gb", batch=64, prompt_tokens=1000,
                   output_tokens=400)


@pytest.fixture(scope="module")
def preflight():
    return Preflight(SPEC, max_energy_j=100.0, max_cost_usd=1e-5)


@pytest.fixture(scope="module")
def estimate_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("estimate") / "estimate.json"
    path.write_text(json.dumps(estimate_serving(SPEC).to_dict()))
    return path


def test_preflight_matches_estimate(preflight):
    direct = estimate_serving(SPEC).energy_per_request_j
    assert preflight.check(1000, 400).energy_j == pytest.approx(direct, rel=0.02)


def test_preflight_allows_small_request(preflight):
    decision = preflight.check(200, 50)
    assert decision.allow
    assert decision.reason == "within limits"
    assert decision.cost_usd > 0


def test_preflight_rejects_large_request(preflight):
    decision = preflight.check(8000, 4000)
    assert not decision.allow
    assert "exceeds" in decision.reason


def test_preflight_rejects_beyond_context(preflight):
    decision = preflight.check(130_000, 5000)
    assert not decision.allow
    assert "context" in decision.reason


def test_preflight_energy_grows_with_tokens(preflight):
    assert preflight.check(1000, 800).energy_j > preflight.check(1000, 400).energy_j
    assert preflight.check(4000, 400).energy_j > preflight.check(1000, 400).energy_j


def test_preflight_median_under_millisecond(preflight):
    for index in range(100):
        preflight.check(100 + index, 200)
    timings = []
    for index in range(1000):
        start = time.perf_counter()
        preflight.check(100 + index, 200)
        timings.append(time.perf_counter() - start)
    assert statistics.median(timings) < 1e-3


@pytest.mark.parametrize("prompt_tokens, max_new_tokens", [
    (math.nan, 10), (10, math.nan), (math.inf, 10), (10, -math.inf), (100.5, 10),
    (True, 10), ("100", 10), (None, 10), (0, 10), (10, -1),
])
def test_preflight_rejects_invalid_request(preflight, prompt_tokens, max_new_tokens):
    decision = preflight.check(prompt_tokens, max_new_tokens)
    assert not decision.allow
    assert decision.reason.startswith("invalid request")
    assert math.isnan(decision.energy_j)
    assert math.isnan(decision.cost_usd)


def test_preflight_energy_raises_for_invalid_request(preflight):
    with pytest.raises(InputError, match="whole numbers"):
        preflight.energy_j(math.nan, 10)


def test_preflight_accepts_whole_number_types(preflight):
    expected = preflight.check(200, 50).energy_j
    assert preflight.check(np.int64(200), np.int32(50)).energy_j == expected
    assert preflight.check(200.0, np.float64(50.0)).energy_j == expected


@pytest.mark.parametrize("settings, message", [
    ({"max_energy_j": math.nan}, "max_energy_j must be a finite number"),
    ({"max_energy_j": -1.0}, "max_energy_j must be at least 0"),
    ({"max_cost_usd": math.inf}, "max_cost_usd must be a finite number"),
    ({"pue": -1.0}, "pue must be at least 1"),
    ({"pue": 0.5}, "pue must be at least 1"),
    ({"pue": math.nan}, "pue must be a finite number"),
    ({"electricity_usd_per_kwh": -0.1}, "electricity_usd_per_kwh must be at least 0"),
    ({"electricity_usd_per_kwh": True}, "electricity_usd_per_kwh must be a finite number"),
])
def test_preflight_rejects_invalid_settings(settings, message):
    # The settings are checked before the tables are built, so no table is computed here.
    with pytest.raises(InputError, match=message):
        Preflight(SPEC, **settings)


@pytest.mark.parametrize("text, value", [
    ("5%", 0.05), ("0.1", 0.1), (" 12.5% ", 0.125), ("1", 1.0), ("0", 0.0), ("250%", 2.5),
])
def test_tolerance_parsing(text, value):
    assert parse_tolerance(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["five", "", "5%%", "%"])
def test_tolerance_invalid(text):
    with pytest.raises(InputError, match="invalid; give a percentage"):
        parse_tolerance(text)


@pytest.mark.parametrize("text", ["nan%", "nan", "inf", "-inf%", "-1%", "-0.05"])
def test_tolerance_not_finite_or_negative(text):
    with pytest.raises(InputError, match="finite number of at least 0"):
        parse_tolerance(text)


@pytest.mark.parametrize("text", ["5", "1.5", "10"])
def test_tolerance_bare_number_ambiguous(text):
    with pytest.raises(InputError, match=f"ambiguous; write {text}% .* or {float(text) / 100:g}"):
        parse_tolerance(text)


def test_baseline_detects_growth():
    result = check_baseline({"energy_j": 110.0, "duration_s": 1.0},
                            {"energy_j": 100.0, "duration_s": 1.0}, 0.05)
    assert not result.passed
    assert [row["field"] for row in result.failures()] == ["energy_j"]


def test_cli_check_budget_over(estimate_file, tmp_path):
    budget = tmp_path / "budget.yaml"
    budget.write_text("energy_per_request_j: 1.0\n")
    result = CliRunner().invoke(app, ["check", str(estimate_file), "--budget", str(budget)])
    assert result.exit_code == 1, result.output
    assert "energy_per_request_j" in result.output


def test_cli_check_budget_within(estimate_file, tmp_path):
    budget = tmp_path / "budget.yaml"
    budget.write_text("energy_per_request_j: 1000.0\n")
    result = CliRunner().invoke(app, ["check", str(estimate_file), "--budget", str(budget)])
    assert result.exit_code == 0, result.output


def test_cli_check_baseline_tolerance(estimate_file, tmp_path):
    data = json.loads(estimate_file.read_text())
    data["energy_j"] *= 1.08
    grown = tmp_path / "grown.json"
    grown.write_text(json.dumps(data))
    over = CliRunner().invoke(app, ["check", str(grown), "--baseline", str(estimate_file),
                                    "--tolerance", "5%"])
    within = CliRunner().invoke(app, ["check", str(grown), "--baseline", str(estimate_file),
                                      "--tolerance", "10%"])
    assert over.exit_code == 1, over.output
    assert "energy_j" in over.output
    assert within.exit_code == 0, within.output


def test_cli_check_needs_one_reference(estimate_file):
    result = CliRunner().invoke(app, ["check", str(estimate_file)])
    assert result.exit_code == 2


def test_history_trend(tmp_path):
    database = tmp_path / "history.sqlite"
    history.record("chat", {"energy_j": 100.0, "duration_s": 1.0}, database, commit="aaa")
    history.record("chat", {"energy_j": 120.0, "duration_s": 1.0}, database, commit="bbb")
    history.record("other", {"energy_j": 5.0, "duration_s": 1.0}, database, commit="")
    records = history.trend("chat", database)
    assert [item["git_commit"] for item in records] == ["aaa", "bbb"]
    assert records[1]["energy_change"] == pytest.approx(0.2)
    assert history.workloads(database) == ["chat", "other"]


def test_history_commit_blank_outside_git(tmp_path):
    assert history.current_commit(tmp_path) == ""


def test_cli_history_env_path(estimate_file, tmp_path, monkeypatch):
    database = tmp_path / "env.sqlite"
    monkeypatch.setenv(history.HISTORY_ENV, str(database))
    result = CliRunner().invoke(app, ["history", "chat", "--record", str(estimate_file),
                                      "--json"])
    assert result.exit_code == 0, result.output
    assert database.is_file()
    assert len(json.loads(result.stdout)) == 1


def test_energy_budget_fixture_passes(energy_budget):
    energy_budget({"energy_j": 5.0}, energy_j=10.0)


def test_assert_helper_lists_fields():
    with pytest.raises(AssertionError, match="energy_j 50 > 10"):
        assert_within_budget({"energy_j": 50.0, "duration_s": 1.0}, energy_j=10.0,
                             duration_s=2.0)
