"""Run a Python entry point under the PyTorch profiler while measuring GPU power.

The profiler's Chrome trace is written with the measured power of each GPU added as a
counter track ("ph": "C"), so measured power and the traced kernels, and through
`energaizer estimate --trace` the estimated energy per step, sit in one file.

Kineto stamps events in wall-clock microseconds, counted from `baseTimeNanoseconds` when
the trace records one (recent PyTorch releases) and from the Unix epoch otherwise. Power
samples are taken on the monotonic clock and moved onto that base.
"""

from __future__ import annotations

import gzip
import json
import runpy
import sys
import time
from pathlib import Path

from energaizer.errors import InputError
from energaizer.measure.meter import Meter
from energaizer.measure.result import MeasureResult

TRACE_NAME = "trace_with_power.json.gz"
COUNTER_NAME = "measured power (W)"


def run_profiled(script: str | Path, arguments: list[str], meter: Meter,
                 out: Path) -> tuple[MeasureResult, Path, int]:
    """Run `script` with `arguments` as `__main__` under the profiler and `meter`.

    Returns the measurement, the trace written to `out` and the script's exit code
    (0 unless it called sys.exit with another code).
    """
    try:
        import torch
        from torch.profiler import ProfilerActivity, profile
    except ImportError as error:
        raise InputError(f"--trace needs torch ({error}). Install it with pip install torch.") from None
    script = Path(script)
    if not script.is_file():
        raise InputError(f"--trace runs a Python script, and {script} is not a file.")
    activities = [ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(ProfilerActivity.CUDA)
    clocks = (time.monotonic(), time.time())
    exit_code = 0
    saved_argv = sys.argv
    with meter:
        with profile(activities=activities, record_shapes=True) as profiler:
            sys.argv = [str(script), *arguments]
            try:
                runpy.run_path(str(script), run_name="__main__")
            except SystemExit as stop:
                exit_code = _exit_code(stop.code)
            finally:
                sys.argv = saved_argv
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "profiler_trace.json"
    profiler.export_chrome_trace(str(raw))
    target = out / TRACE_NAME
    add_power_track(raw, meter, clocks, target)
    raw.unlink()
    return meter.result, target, exit_code


def _exit_code(code: object) -> int:
    """Map the argument of sys.exit to a process exit code, as Python does."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    return 1


def add_power_track(trace_path: Path, meter: Meter, clocks: tuple[float, float],
                    target: Path) -> None:
    """Write `trace_path` to `target` (gzip) with one power counter track per GPU."""
    document = json.loads(trace_path.read_text(encoding="utf-8"))
    events = document["traceEvents"] if isinstance(document, dict) else document
    base_ns = document.get("baseTimeNanoseconds", 0) if isinstance(document, dict) else 0
    offset_us = _sample_offset_us(clocks, base_ns if isinstance(base_ns, (int, float)) else 0)
    assert meter.sampler is not None
    for series, item in zip(meter.sampler.series, meter.resolved):
        label = f"GPU {item.device.index} {COUNTER_NAME}"
        for sample in series.samples:
            power = sample.get("power_instant")
            if power is None:
                power = sample.get("power_average")
            if power is None:
                continue
            events.append({"ph": "C", "name": label, "pid": f"GPU {item.device.index} power",
                           "tid": 0, "ts": sample.time_s * 1e6 + offset_us,
                           "args": {"power_w": power}})
    if isinstance(document, dict):
        document.setdefault("energaizer", {})["measured"] = meter.result.to_dict()
    with gzip.open(target, "wt", encoding="utf-8") as handle:
        json.dump(document, handle)


def _sample_offset_us(clocks: tuple[float, float], base_ns: float) -> float:
    """Offset in microseconds from monotonic sample times to the trace's time base."""
    monotonic_s, wall_s = clocks
    return (wall_s - monotonic_s) * 1e6 - base_ns / 1e3
