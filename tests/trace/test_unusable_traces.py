"""Traces with no usable GPU activity give clear errors: cut gzip streams, invalid kernels."""

from __future__ import annotations

import gzip
import json

import pytest
from factories import kernel, trace_document, write_trace
from typer.testing import CliRunner

import energaizer
from energaizer.cli import app
from energaizer.errors import TraceError


def _kernels(count: int) -> list[dict]:
    return [kernel(f"k{i}", 1000 + i * 10, 5, i) for i in range(count)]


def _estimate_damaged(tmp_path, index: int, field: str, value):
    """Estimate 20 kernels of which one has `field` set to `value`."""
    events = _kernels(20)
    events[index][field] = value
    path = write_trace(tmp_path / "damaged.json", trace_document(events))
    return energaizer.estimate(trace=path, gpu="a10")


@pytest.fixture()
def cut_trace(tmp_path):
    whole = gzip.compress(json.dumps({"traceEvents": _kernels(200)}).encode())
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
    events = _kernels(1)
    events[0]["ts"] = "abc"
    path = write_trace(tmp_path / "bad.json", trace_document(events))
    with pytest.raises(TraceError, match="1 events were left out for a missing or invalid ts"):
        energaizer.estimate(trace=path)


@pytest.mark.parametrize("field, value", [("dur", 1e30), ("dur", 2.0**70), ("ts", 1e30)])
def test_implausible_times_left_out(tmp_path, field, value):
    result = _estimate_damaged(tmp_path, 3, field, value)
    assert result.duration_s < 1.0
    assert any("1 events had a missing or invalid ts, dur, name, category or phase" in w
               for w in result.warnings)


@pytest.mark.parametrize("field, value", [("cat", 5), ("ph", None)])
def test_damaged_category_or_phase_counted(tmp_path, field, value):
    result = _estimate_damaged(tmp_path, 2, field, value)
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
