"""The command line: exit codes, JSON output and messages."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest
from factories import trace_document, training_steps, write_trace
from typer.testing import CliRunner

from energaizer.cli import app

runner = CliRunner()


@pytest.fixture()
def trace_path(tmp_path):
    return write_trace(tmp_path / "trace.json", trace_document(training_steps(steps=3)))


def test_estimate_json(trace_path):
    result = runner.invoke(app, ["estimate", "--trace", str(trace_path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["schema"] == "energaizer.estimate/1"
    assert data["energy_j"] > 0
    assert len(data["steps"]) == 3


def test_estimate_tables(trace_path):
    result = runner.invoke(app, ["estimate", "--trace", str(trace_path)])
    assert result.exit_code == 0, result.output
    for text in ("Energy by op class", "Energy per step", "Top kernels by energy", "Power model:"):
        assert text in result.stdout


def test_analyze_json_and_tables(trace_path):
    result = runner.invoke(app, ["analyze", str(trace_path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["schema"] == "energaizer.analysis/1"
    assert data["devices"][0]["steps"]["method"] == "profiler step"
    tables = runner.invoke(app, ["analyze", str(trace_path)])
    assert tables.exit_code == 0, tables.output
    assert "Top signatures" in tables.stdout


def test_bad_input_exit_code_2_without_traceback(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("this is not json")
    result = runner.invoke(app, ["estimate", "--trace", str(path)])
    assert result.exit_code == 2
    assert "not JSON" in result.output
    assert "Traceback" not in result.output


def test_missing_file_exit_code_2(tmp_path):
    result = runner.invoke(app, ["analyze", str(tmp_path / "missing.json")])
    assert result.exit_code == 2
    assert "not found" in result.output


def test_unknown_gpu_lists_close_ids(trace_path):
    result = runner.invoke(app, ["estimate", "--trace", str(trace_path), "--gpu", "a100-pcie"])
    assert result.exit_code == 2
    assert "a100-pcie-40gb" in result.output


def test_lenient_flag(tmp_path):
    text = json.dumps(trace_document(training_steps(steps=3)))
    path = tmp_path / "cut.json"
    path.write_text(text[: len(text) // 2])
    strict = runner.invoke(app, ["estimate", "--trace", str(path)])
    assert strict.exit_code == 2
    assert "truncated after" in strict.output
    lenient = runner.invoke(app, ["estimate", "--trace", str(path), "--lenient", "--json"])
    assert lenient.exit_code == 0, lenient.output
    assert json.loads(lenient.stdout)["lower_bound"] is True


def test_profiles_command():
    result = runner.invoke(app, ["profiles", "--json"])
    assert result.exit_code == 0, result.output
    ids = {item["id"] for item in json.loads(result.stdout)}
    assert {"h200-sxm-141gb", "a100-pcie-40gb", "b200", "t4"} <= ids


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert "energaizer" in result.stdout


# Progress bars: drawn on a terminal only, never under --quiet.

class _RecordedBar:
    """Stands in for ProgressBar and records how it was made and updated."""

    instances: ClassVar[list[_RecordedBar]] = []

    def __init__(self, enabled, total=None, description="", unit="items",
                 finished_description=None):
        self.enabled = enabled
        self.description = description
        self.unit = unit
        self.updates: list[tuple[int, int]] = []
        _RecordedBar.instances.append(self)

    def __enter__(self):
        return self._record if self.enabled else None

    def _record(self, done, total):
        self.updates.append((done, total))

    def __exit__(self, *exc_info):
        return None


@pytest.fixture()
def recorded_bars(monkeypatch):
    _RecordedBar.instances = []
    monkeypatch.setattr("energaizer.cli.ProgressBar", _RecordedBar)
    return _RecordedBar.instances


@pytest.fixture()
def terminal(monkeypatch):
    monkeypatch.setattr("energaizer.cli._stderr_is_terminal", lambda: True)


@pytest.mark.parametrize("command", [["estimate", "--trace"], ["analyze"]])
def test_progress_off_without_terminal(trace_path, command):
    result = runner.invoke(app, [*command, str(trace_path)])
    assert result.exit_code == 0, result.output
    assert "reading trace" not in result.stderr
    assert "analyzing" not in result.stderr


@pytest.mark.parametrize("command", [["estimate", "--trace"], ["analyze"]])
def test_progress_bar_not_enabled_without_terminal(trace_path, recorded_bars, command):
    result = runner.invoke(app, [*command, str(trace_path)])
    assert result.exit_code == 0, result.output
    assert len(recorded_bars) == 1
    assert not recorded_bars[0].enabled


@pytest.mark.parametrize("command", [["estimate", "--trace"], ["analyze"]])
def test_progress_off_with_quiet(trace_path, recorded_bars, terminal, command):
    result = runner.invoke(app, ["--quiet", *command, str(trace_path)])
    assert result.exit_code == 0, result.output
    assert len(recorded_bars) == 1
    assert not recorded_bars[0].enabled
    assert recorded_bars[0].updates == []


@pytest.mark.parametrize("command", [["estimate", "--trace"], ["analyze"]])
def test_progress_counts_trace_bytes(trace_path, recorded_bars, terminal, command):
    result = runner.invoke(app, [*command, str(trace_path)])
    assert result.exit_code == 0, result.output
    bar = recorded_bars[0]
    assert bar.enabled
    assert bar.unit == "bytes"
    size = trace_path.stat().st_size
    assert bar.updates[-1] == (size, size)


def test_progress_ticks_per_folder_trace(tmp_path, recorded_bars, terminal):
    for rank in range(2):
        document = trace_document(training_steps(steps=2), distributed={"rank": rank})
        write_trace(tmp_path / f"rank{rank}.json", document)
    result = runner.invoke(app, ["estimate", "--trace", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    assert recorded_bars[0].updates == [(1, 2), (2, 2)]


def test_model_estimate_shows_bar_on_terminal(recorded_bars, terminal):
    result = runner.invoke(app, ["estimate", "--model", "llama-3.1-8b", "--json"])
    assert result.exit_code == 0, result.output
    assert recorded_bars[0].enabled
    assert recorded_bars[0].unit is None
