"""Compare energaizer and Holistic Trace Analysis (HTA) on one huge generated trace.

Usage: python benchmarks/huge_trace.py [--size-gb 1.0] [--source TRACE] [--gzip]
       [--workdir DIR] [--skip-hta]

The trace is built by repeating every event of a recorded trace (by default a
6-step DLRM-style training trace from the shared data) with timestamps shifted past the
previous copy, fresh correlation, external and flow ids, and renumbered ProfilerSteps.
Each tool then runs in its own subprocess, which reports its wall time and peak RSS
(its own and that of its children, from `resource.getrusage`):

- energaizer reads, analyzes and estimates the trace (`energaizer.estimate`);
- HTA only loads it (`hta.trace_analysis.TraceAnalysis(trace_dir=...)`).

HTA is not a dependency of energaizer; install it with `pip install
holistictraceanalysis` to run the comparison. Targets: energaizer at least 10 times
faster than HTA's load, with a peak RSS under 1.5 GB for a 1 GB trace.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = (
    REPOSITORY.parent / "shared" / "data" / "traces" / "hta"
    / "a100pg509_trace_diff_control_6steps_shapes.json.gz"
)
MAX_RSS_BYTES = 1.5e9
MIN_SPEEDUP = 10.0

_STEP_NAME = re.compile(r"^ProfilerStep#(\d+)$")
# Gap between two copies of the source, in microseconds.
_COPY_GAP_US = 1000.0

_CHILD_TEMPLATE = """
import json, resource, sys, time
start = time.perf_counter()
{body}
elapsed = time.perf_counter() - start
usage = [resource.getrusage(who).ru_maxrss for who in
         (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
print("RESULT " + json.dumps({{"seconds": elapsed, "peak_rss_bytes": max(usage) * 1024,
                               "detail": detail}}))
"""

_ENERGAIZER_BODY = """
import energaizer
result = energaizer.estimate(trace=sys.argv[1])
detail = f"{result.energy_j:.3f} J over {result.duration_s:.3f} s, {len(result.steps)} steps"
"""

_HTA_BODY = """
import logging
logging.disable(logging.WARNING)
from hta.trace_analysis import TraceAnalysis
analysis = TraceAnalysis(trace_dir=sys.argv[2])
detail = f"{sum(len(frame) for frame in analysis.t.traces.values())} rows"
"""


def _load_source(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    if data.startswith(b"\x1f\x8b"):
        data = gzip.decompress(data)
    document = msgspec.json.decode(data)
    if isinstance(document, list):
        document = {"traceEvents": document}
    return document


def _id_spans(events: list[dict[str, Any]]) -> tuple[int, int, int]:
    """Return one past the largest correlation id, external id and flow id."""
    correlation = external = flow = 0
    for event in events:
        args = event.get("args") or {}
        if isinstance(args.get("correlation"), int):
            correlation = max(correlation, args["correlation"])
        for key in ("External id", "external id"):
            if isinstance(args.get(key), int):
                external = max(external, args[key])
        if isinstance(event.get("id"), int):
            flow = max(flow, event["id"])
    return correlation + 1, external + 1, flow + 1


def _time_span_us(events: list[dict[str, Any]]) -> tuple[float, float]:
    """Return the first timestamp and the span of the events, in microseconds."""
    starts = [float(e["ts"]) for e in events if isinstance(e.get("ts"), (int, float))]
    ends = [
        float(e["ts"]) + float(e.get("dur") or 0)
        for e in events
        if isinstance(e.get("ts"), (int, float)) and isinstance(e.get("dur"), (int, float))
    ]
    first = min(starts)
    return first, max(ends + starts) - first + _COPY_GAP_US


def _shifted_copy(events: list[dict[str, Any]], copy: int, spans: tuple[int, int, int],
                  span_us: float, step_count: int) -> list[dict[str, Any]]:
    """Return copy number `copy` of the events with shifted times, ids and step numbers."""
    correlation_span, external_span, flow_span = spans
    shift_us = copy * span_us
    copied = []
    for event in events:
        event = dict(event)
        if isinstance(event.get("ts"), (int, float)):
            event["ts"] = round(event["ts"] + shift_us, 3)
        if isinstance(event.get("id"), int):
            event["id"] += copy * flow_span
        name = event.get("name")
        match = _STEP_NAME.match(name) if isinstance(name, str) else None
        if match:
            event["name"] = f"ProfilerStep#{int(match.group(1)) + copy * step_count}"
        args = event.get("args")
        if isinstance(args, dict):
            args = dict(args)
            if isinstance(args.get("correlation"), int):
                args["correlation"] += copy * correlation_span
            for key in ("External id", "external id"):
                if isinstance(args.get(key), int):
                    args[key] += copy * external_span
            event["args"] = args
        copied.append(event)
    return copied


def generate_trace(source: Path, target: Path, size_bytes: int, compress: bool) -> int:
    """Write a trace of about `size_bytes` uncompressed bytes; return the events written."""
    document = _load_source(source)
    all_events = document.pop("traceEvents")
    # Process and thread names ("ph": "M") describe the timeline once, not per copy.
    metadata_events = [e for e in all_events if e.get("ph") == "M"]
    events = [e for e in all_events if e.get("ph") != "M"]
    spans = _id_spans(events)
    _, span_us = _time_span_us(events)
    step_count = sum(1 for e in events if _STEP_NAME.match(str(e.get("name"))))

    first_copy = msgspec.json.encode(events)
    copies = max(1, math.ceil(size_bytes / len(first_copy)))
    head = msgspec.json.encode(document)[:-1]
    opener = (head + b', "traceEvents": [') if len(head) > 1 else b'{"traceEvents": ['
    opener_function = functools.partial(gzip.open, compresslevel=1) if compress else open
    with opener_function(target, "wb") as output:
        output.write(opener)
        output.write(msgspec.json.encode(metadata_events)[1:-1])
        for copy in range(copies):
            print(f"\rwriting copy {copy + 1}/{copies}", end="", file=sys.stderr, flush=True)
            encoded = msgspec.json.encode(_shifted_copy(events, copy, spans, span_us, step_count))
            if metadata_events or copy:
                output.write(b",\n")
            output.write(encoded[1:-1])
        output.write(b"]}\n")
    print(file=sys.stderr)
    return len(metadata_events) + copies * len(events)


def run_child(body: str, trace: Path) -> dict[str, Any]:
    """Run `body` in a fresh interpreter; return its seconds, peak RSS and detail."""
    script = _CHILD_TEMPLATE.format(body=body)
    completed = subprocess.run(
        [sys.executable, "-c", script, str(trace), str(trace.parent)],
        capture_output=True, text=True, check=False,
    )
    for line in completed.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"child failed with exit code {completed.returncode}:\n{completed.stderr[-3000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=1.0,
                        help="uncompressed size of the generated trace in GB (1e9 bytes)")
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="trace to repeat")
    parser.add_argument("--gzip", action="store_true", help="write the trace as .json.gz")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="folder for the generated trace (default: a temporary folder)")
    parser.add_argument("--skip-hta", action="store_true", help="run energaizer only")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=options.workdir) as folder:
        target = Path(folder) / ("huge.json.gz" if options.gzip else "huge.json")
        start = time.perf_counter()
        count = generate_trace(options.source, target, int(options.size_gb * 1e9), options.gzip)
        print(f"generated {target.stat().st_size / 1e9:.2f} GB on disk, {count:,} events, "
              f"in {time.perf_counter() - start:.1f} s")

        ours = run_child(_ENERGAIZER_BODY, target)
        print(f"energaizer estimate: {ours['seconds']:7.1f} s, peak RSS "
              f"{ours['peak_rss_bytes'] / 1e9:5.2f} GB ({ours['detail']})")
        if options.skip_hta:
            return 0 if ours["peak_rss_bytes"] < MAX_RSS_BYTES * options.size_gb else 1
        theirs = run_child(_HTA_BODY, target)
        print(f"HTA load:            {theirs['seconds']:7.1f} s, peak RSS "
              f"{theirs['peak_rss_bytes'] / 1e9:5.2f} GB ({theirs['detail']})")

    speedup = theirs["seconds"] / ours["seconds"]
    memory_ratio = theirs["peak_rss_bytes"] / ours["peak_rss_bytes"]
    print(f"time ratio (HTA / energaizer): {speedup:.1f}x (target {MIN_SPEEDUP:.0f}x)")
    print(f"peak memory ratio (HTA / energaizer): {memory_ratio:.1f}x")
    within_memory = ours["peak_rss_bytes"] < MAX_RSS_BYTES * options.size_gb
    return 0 if speedup >= MIN_SPEEDUP and within_memory else 1


if __name__ == "__main__":
    raise SystemExit(main())
