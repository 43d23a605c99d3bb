"""Invalid input to `energaizer check` and `energaizer history`: exit code 2 with a
message that names the file and value, and history databases with invalid rows."""

from __future__ import annotations

import json
import logging
import sqlite3

import pytest
from typer.testing import CliRunner

from energaizer import history
from energaizer.budget import check_baseline, check_budget, raise_if_failed, read_budget
from energaizer.cli import app
from energaizer.errors import CheckFailedError, InputError

ESTIMATE = {"energy_j": 100.0, "duration_s": 2.0, "avg_power_w": 50.0}


@pytest.fixture
def estimate_file(tmp_path):
    path = tmp_path / "estimate.json"
    path.write_text(json.dumps(ESTIMATE))
    return path


def _write(path, data):
    path.write_text(json.dumps(data))
    return path


def _check(*arguments):
    return CliRunner().invoke(app, ["check", *map(str, arguments)])


@pytest.mark.parametrize("tolerance, message", [
    ("5", "ambiguous; write 5% for 5 percent, or 0.05 as a fraction"),
    ("nan%", "Tolerance 'nan%' is invalid"),
    ("inf", "Tolerance 'inf' is invalid"),
    ("-5%", "Tolerance '-5%' is invalid"),
])
def test_cli_tolerance_rejected(estimate_file, tolerance, message):
    result = _check(estimate_file, "--baseline", estimate_file, "--tolerance", tolerance)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("limit", ["-1", ".nan", ".inf", "'50'", "true"])
def test_cli_budget_limit_rejected(estimate_file, tmp_path, limit):
    budget = tmp_path / "budget.yaml"
    budget.write_text(f"energy_j: {limit}\n")
    result = _check(estimate_file, "--budget", budget)
    assert result.exit_code == 2, result.output
    assert f"Budget {budget}: energy_j" in result.output
    assert "is invalid" in result.output
    assert "OVER" not in result.output


def test_budget_zero_limit_allowed(tmp_path):
    budget = tmp_path / "budget.yaml"
    budget.write_text("idle_energy_j: 0\n")
    assert read_budget(budget) == {"idle_energy_j": 0.0}
    result = check_budget({"idle_energy_j": 0.0}, read_budget(budget))
    assert result.passed
    assert result.rows[0]["change"] == 0.0


@pytest.mark.parametrize("value", ["x", None, True, -1.0, [1.0]])
@pytest.mark.parametrize("role", ["estimate", "baseline"])
def test_cli_estimate_field_rejected(estimate_file, tmp_path, value, role):
    bad = _write(tmp_path / "bad.json", {**ESTIMATE, "energy_j": value})
    current, reference = (bad, estimate_file) if role == "estimate" else (estimate_file, bad)
    result = _check(current, "--baseline", reference)
    assert result.exit_code == 2, result.output
    assert f"{role.capitalize()} {bad}: energy_j {value!r} is invalid" in result.output
    assert "Traceback" not in result.output


def test_cli_estimate_nan_rejected(tmp_path):
    # json.dumps writes NaN, which json.loads reads back as a float NaN.
    bad = _write(tmp_path / "bad.json", {**ESTIMATE, "duration_s": float("nan")})
    budget = tmp_path / "budget.yaml"
    budget.write_text("energy_j: 500\n")
    result = _check(bad, "--budget", budget)
    assert result.exit_code == 2, result.output
    assert f"Estimate {bad}: duration_s nan is invalid" in result.output


def test_check_budget_rejects_nan_limit():
    with pytest.raises(InputError, match="energy_j nan is invalid"):
        check_budget(ESTIMATE, {"energy_j": float("nan")})


def test_check_baseline_rejects_nan_tolerance():
    with pytest.raises(InputError, match="Tolerance nan is invalid"):
        check_baseline(ESTIMATE, ESTIMATE, float("nan"))


def test_cli_baseline_failure_wording(estimate_file, tmp_path):
    grown = _write(tmp_path / "grown.json", {**ESTIMATE, "duration_s": 2.5})
    result = _check(grown, "--baseline", estimate_file, "--tolerance", "10%")
    assert result.exit_code == 1, result.output
    assert "Grew past the baseline tolerance of 10%: duration_s: 2.5 against baseline 2" \
        in result.output
    assert "Over budget" not in result.output


def test_baseline_checks_duration_and_power():
    grown = {"energy_j": 100.0, "duration_s": 3.0, "avg_power_w": 80.0}
    result = check_baseline(grown, ESTIMATE, 0.05)
    assert [row["field"] for row in result.failures()] == ["duration_s", "avg_power_w"]
    with pytest.raises(CheckFailedError, match="baseline tolerance of 5%"):
        raise_if_failed(result)


def test_budget_failure_wording():
    result = check_budget(ESTIMATE, {"energy_j": 50.0})
    with pytest.raises(CheckFailedError, match=r"Over budget: energy_j: 100 > 50 \(\+100.0%\)"):
        raise_if_failed(result)


def test_cli_history_rejects_invalid_record(estimate_file, tmp_path):
    database = tmp_path / "history.sqlite"
    bad = _write(tmp_path / "bad.json", {**ESTIMATE, "energy_j": "x"})
    result = CliRunner().invoke(app, ["history", "my-model", "--record", str(bad),
                                      "--db", str(database)])
    assert result.exit_code == 2, result.output
    assert f"Cannot record estimate {bad}: energy_j 'x' is invalid" in result.output
    assert history.trend("my-model", database) == []


@pytest.mark.parametrize("estimate, message", [
    ({"duration_s": 1.0}, "has no energy_j field"),
    ({"energy_j": float("nan")}, "energy_j nan is invalid"),
    ({"energy_j": float("inf")}, "energy_j inf is invalid"),
    ({"energy_j": 1.0, "duration_s": "1 s"}, "duration_s '1 s' is invalid"),
    ({"energy_j": 1.0, "energy_per_request_j": -2.0}, "energy_per_request_j -2.0 is invalid"),
])
def test_history_record_validates(tmp_path, estimate, message):
    with pytest.raises(InputError, match=message):
        history.record("chat", estimate, tmp_path / "history.sqlite", commit="")


def test_history_record_optional_fields(tmp_path):
    database = tmp_path / "history.sqlite"
    history.record("chat", {"energy_j": 1.0}, database, commit="")
    assert history.trend("chat", database)[0]["duration_s"] is None


def _insert_raw(database, energy_j, duration_s=1.0, recorded_at=1.7e9):
    """Insert a row past `history.record`'s checks, as an older energaizer could have."""
    history.workloads(database)  # creates the table when the file is new
    connection = sqlite3.connect(database)
    with connection:
        connection.execute(
            "INSERT INTO estimates (workload, recorded_at, git_commit, energy_j, duration_s, "
            "energy_per_request_j, estimate_json) VALUES ('chat', ?, 'abc', ?, ?, NULL, '{}')",
            (recorded_at, energy_j, duration_s))
    connection.close()


def test_history_skips_invalid_rows(tmp_path, caplog):
    database = tmp_path / "history.sqlite"
    history.record("chat", {"energy_j": 100.0, "duration_s": 1.0}, database, commit="aaa")
    _insert_raw(database, "x")
    _insert_raw(database, 120.0, duration_s="slow")
    _insert_raw(database, None)
    _insert_raw(database, 120.0, recorded_at="yesterday")
    history.record("chat", {"energy_j": 110.0, "duration_s": 1.0}, database, commit="bbb")
    with caplog.at_level(logging.WARNING, logger="energaizer.history"):
        records = history.trend("chat", database)
    assert [item["energy_j"] for item in records] == [100.0, 110.0]
    assert records[1]["energy_change"] == pytest.approx(0.1)
    assert "Skipped 4 invalid history record(s) of workload 'chat'" in caplog.text
    assert "energy_j 'x' is not a finite number" in caplog.text
    assert "duration_s 'slow'" in caplog.text
    assert "energy_j is missing" in caplog.text
    assert "recorded_at 'yesterday' is not a time" in caplog.text


def test_history_warning_names_first_rows(tmp_path, caplog):
    database = tmp_path / "history.sqlite"
    for _ in range(history.MAX_NAMED_INVALID_ROWS + 2):
        _insert_raw(database, "x")
    with caplog.at_level(logging.WARNING, logger="energaizer.history"):
        assert history.trend("chat", database) == []
    assert caplog.text.count("energy_j 'x'") == history.MAX_NAMED_INVALID_ROWS
    assert "and 2 more" in caplog.text


def test_cli_history_shows_valid_rows(estimate_file, tmp_path, caplog):
    database = tmp_path / "history.sqlite"
    first = CliRunner().invoke(app, ["history", "chat", "--record", str(estimate_file),
                                     "--db", str(database)])
    assert first.exit_code == 0, first.output
    _insert_raw(database, "x")
    with caplog.at_level(logging.WARNING, logger="energaizer.history"):
        result = CliRunner().invoke(app, ["history", "chat", "--db", str(database), "--json"])
    assert result.exit_code == 0, result.output
    assert [item["energy_j"] for item in json.loads(result.stdout)] == [100.0]
    assert "Skipped 1 invalid history record(s)" in caplog.text
