"""measure --trace: the profiler trace carries the measured power as a counter track."""

from __future__ import annotations

import gzip
import json

from typer.testing import CliRunner

from energaizer.cli import app

runner = CliRunner()
SCRIPT = """
import sys
import torch
a = torch.randn(128, 128)
for _ in range(int(sys.argv[1])):
    a = torch.tanh(a @ a)
sys.exit(int(sys.argv[2]))
"""


def _run(tmp_path, exit_code: int):
    script = tmp_path / "work.py"
    script.write_text(SCRIPT)
    out = tmp_path / "out"
    result = runner.invoke(app, ["measure", "--simulate", "--trace", "--out", str(out),
                                 "--interval-ms", "5", "--json", "--", str(script), "30",
                                 str(exit_code)])
    return result, out


def test_trace_has_power_counter_track(tmp_path):
    result, out = _run(tmp_path, 0)
    assert result.exit_code == 0, result.output
    document = json.load(gzip.open(out / "trace_with_power.json.gz"))
    events = document["traceEvents"]
    counters = [e["ts"] for e in events if e.get("ph") == "C"]
    spans = [e["ts"] for e in events if e.get("ph") == "X"]
    assert counters
    assert spans
    assert min(counters) <= min(spans) + 2e6
    assert max(counters) >= max(spans) - 2e6
    assert document["energaizer"]["measured"]["simulated"] is True


def test_script_exit_code_passed_through(tmp_path):
    result, out = _run(tmp_path, 3)
    assert result.exit_code == 3


def test_trace_needs_out_folder(tmp_path):
    script = tmp_path / "work.py"
    script.write_text("print(1)\n")
    result = runner.invoke(app, ["measure", "--simulate", "--trace", "--", str(script)])
    assert result.exit_code == 2
    assert "--out" in result.output
