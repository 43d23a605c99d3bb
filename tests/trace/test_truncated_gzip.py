"""Traces with no usable GPU activity give clear errors: cut gzip streams, invalid kernels."""

from __future__ import annotations

import gzip
import json

import pytest
from typer.testing import CliRunner

import energaizer
from energaizer.cli import app
from energaizer.errors import TraceError


@pytest.fixture()
def cut_trace(tmp_path):
    events = [{"ph": "X", "cat": "kernel", "name": f"k{i}", "ts": i * 10, "dur": 5,
               "pid": 0, "tid": 7} for i in range(200)]
    whole = gzip.compress(json.dumps({"traceEvents": events}).encode())
    path = tmp_path / "cut.json.gz"
    path.write_bytes(whole[:20])
    return path


def test_api_raises_trace_error(cut_trace):
    with pytest.raises(TraceError, match="the file is truncated"):
        energaizer.estimate(trace=cut_trace)


def test_cli_reports_truncation(cut_trace):
    result = CliRunner().invoke(app, ["estimate", "--trace", str(cut_trace)])
    assert result.exit_code == 2
    assert "gzip stream ends after 20 bytes" in result.output


def test_folder_names_the_file(cut_trace):
    result = CliRunner().invoke(app, ["estimate", "--trace", str(cut_trace.parent)])
    assert result.exit_code == 2
    assert "cut.json.gz" in result.output
    assert "truncated" in result.output


def test_invalid_kernels_named_in_error(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"traceEvents": [
        {"ph": "X", "cat": "kernel", "name": "k", "ts": "abc", "dur": 5, "pid": 0, "tid": 7}]}))
    with pytest.raises(TraceError, match="1 events were left out for a missing or invalid ts"):
        energaizer.estimate(trace=path)


@pytest.mark.parametrize("field, value", [("dur", 1e30), ("dur", 2.0**70), ("ts", 1e30)])
def test_implausible_times_left_out(tmp_path, field, value):
    events = [{"ph": "X", "cat": "kernel", "name": f"k{i}", "ts": 1000 + i * 10, "dur": 5,
               "pid": 0, "tid": 7, "args": {"device": 0, "stream": 7, "correlation": i}}
              for i in range(20)]
    events[3][field] = value
    path = tmp_path / "odd.json"
    path.write_text(json.dumps({"traceEvents": events}))
    result = energaizer.estimate(trace=path, gpu="a10")
    assert result.duration_s < 1.0
    assert any("1 events had a missing or invalid ts, dur, name, category or phase" in w
               for w in result.warnings)


@pytest.mark.parametrize("field, value", [("cat", 5), ("ph", None)])
def test_damaged_category_or_phase_counted(tmp_path, field, value):
    events = [{"ph": "X", "cat": "kernel", "name": f"k{i}", "ts": 1000 + i * 10, "dur": 5,
               "pid": 0, "tid": 7, "args": {"device": 0, "stream": 7, "correlation": i}}
              for i in range(20)]
    events[2][field] = value
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps({"traceEvents": events}))
    result = energaizer.estimate(trace=path, gpu="a10")
    assert any(w.startswith("1 events had a missing or invalid") for w in result.warnings)


def test_lenient_error_drops_lenient_advice(tmp_path):
    path = tmp_path / "numbers.json"
    path.write_text('{"traceEvents": [1, 2, 3]}')
    with pytest.raises(TraceError) as caught:
        energaizer.estimate(trace=path, lenient=True)
    assert "even leniently" in str(caught.value)
    assert "--lenient" not in str(caught.value)
    with pytest.raises(TraceError, match="pass --lenient"):
        energaizer.estimate(trace=path)
