"""Estimate the energy of a recorded profiler trace.

A trace is read, analyzed per GPU, priced with the power model and integrated over its
timeline; a folder of per-rank traces gives one estimate per rank and their total.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from energaizer.analyze.analysis import DeviceAnalysis, TraceAnalysis, analyze_trace
from energaizer.calibrate.profile import (
    calibration_for,
    calibration_warnings,
    estimate_provenance,
)
from energaizer.errors import NotNvidiaTraceError, TraceError
from energaizer.estimators.combine import TOP_KERNELS, combine_estimates
from energaizer.estimators.trace_power import price_activity
from energaizer.estimators.workload import UNCERTAINTY_BY_KIND
from energaizer.hardware.matching import match_device
from energaizer.hardware.profiles import GpuProfile, load_profile
from energaizer.power.limits import (
    check_operating_point,
    lowest_clock_mhz,
    raise_limit_unreachable,
)
from energaizer.power.timeline import TimelineEnergy, integrate_timeline
from energaizer.progress import ProgressCallback
from energaizer.results import ClassEnergy, Estimate, GpuInfo, KernelEnergy, StepEnergy
from energaizer.trace import is_trace_folder, read_trace, read_trace_folder


def estimate_trace(path: str | Path, gpu: str | None = None, lenient: bool = False,
                   clock_mhz: float | None = None, power_limit_w: float | None = None,
                   calibration: str | Path | None = None,
                   progress: ProgressCallback | None = None) -> Estimate:
    """Estimate one trace file, or every rank of a folder or tar archive of traces.

    `gpu` names the GPU to estimate on; when the trace records a different GPU, kernel
    times are retargeted to it. `clock_mhz` and `power_limit_w` set the target's clock
    and cap; `calibration` is a calibration profile file for the target. `progress`
    follows the reading, as `read_trace` or `read_trace_folder` reports it.
    """
    options = _Options(load_profile(gpu) if gpu else None, clock_mhz, power_limit_w, calibration)
    if is_trace_folder(path):
        ranks = [
            _estimate_analysis(analyze_trace(item.trace), options, rank=item.rank)
            for item in read_trace_folder(path, lenient=lenient, progress=progress)
        ]
        return combine_estimates(ranks, {"kind": "trace", "path": str(path), "ranks": len(ranks)})
    trace = read_trace(path, lenient=lenient, progress=progress)
    return _estimate_analysis(analyze_trace(trace), options)


@dataclass
class _Options:
    target: GpuProfile | None
    clock_mhz: float | None
    power_limit_w: float | None
    calibration: str | Path | None


def _estimate_analysis(analysis: TraceAnalysis, options: _Options,
                       rank: int | None = None) -> Estimate:
    trace = analysis.trace
    if analysis.vendor == "amd" and options.target is None:
        names = ", ".join(sorted({str(p.get("name")) for p in trace.device_properties})) or "an AMD GPU"
        raise NotNvidiaTraceError(
            f"{trace.path}: the trace was recorded on {names}, not an NVIDIA GPU. "
            "energaizer models NVIDIA GPUs; pass --gpu with a profile for this GPU to "
            "estimate it anyway.",
            path=trace.path,
        )
    if not analysis.devices:
        reasons = []
        if trace.unusable_events:
            reasons.append(f"{trace.unusable_events} events were left out for a missing or "
                           "invalid ts, dur, name, category or phase")
        if trace.set_aside_activity:
            reasons.append(f"{trace.set_aside_activity} GPU activities had timestamps that "
                           "cannot be placed on the timeline")
        advice = ("Fix those events or record the trace again." if reasons else
                  "Record it with torch.profiler and ProfilerActivity.CUDA enabled.")
        found = f" ({'; '.join(reasons)})" if reasons else ""
        raise TraceError(
            f"{trace.path}: the trace contains no usable GPU kernels, memcpys or "
            f"memsets{found}. {advice}",
            path=trace.path,
        )
    estimates = []
    for device in analysis.devices:
        recorded, target, warnings = _profiles_for(analysis, device.device, options.target)
        estimates.append(_estimate_device(analysis, device, recorded, target, options,
                                          warnings, rank))
    if len(estimates) == 1:
        return estimates[0]
    return combine_estimates(estimates, {"kind": "trace", "path": trace.path, "devices": len(estimates)})


def _profiles_for(analysis: TraceAnalysis, device: int,
                  requested: GpuProfile | None) -> tuple[GpuProfile, GpuProfile, list[str]]:
    """Return the GPU the trace was recorded on, the GPU to estimate on, and warnings."""
    trace = analysis.trace
    properties = trace.device_properties_for(device)
    if properties is None and trace.device_properties:
        properties = trace.device_properties[0]
    if properties is None or analysis.vendor == "amd":
        if requested is None:
            raise TraceError(
                f"{trace.path}: the trace records no deviceProperties, so its GPU is unknown. "
                "Pass --gpu ID to name it (`energaizer profiles` lists the ids).",
                path=trace.path,
            )
        return requested, requested, []
    recorded, warnings = match_device(properties)
    if requested is None or requested.id == recorded.id:
        return recorded, requested or recorded, warnings
    warnings.append(
        f"The trace was recorded on {properties.get('name')} ({recorded.id}); kernel times "
        f"were retargeted to {requested.id} by the performance model, and gaps between kernels "
        "were kept as recorded."
    )
    return recorded, requested, warnings


def _estimate_device(analysis: TraceAnalysis, device: DeviceAnalysis, recorded: GpuProfile,
                     target: GpuProfile, options: _Options, match_warnings: list[str],
                     rank: int | None) -> Estimate:
    activity = device.activity
    calibration = calibration_for(target, options.calibration)
    check_operating_point(target, options.clock_mhz, options.power_limit_w)
    clock = float(options.clock_mhz or target.boost_clock_mhz)
    limit = float(min(options.power_limit_w or target.power_limit_w, target.power_limit_w))
    # The draw is first integrated under the board's own limit. A lower requested limit
    # then makes the GPU lower its clock until the average fits, as its capping does.
    priced, timeline, starts = _timeline_at(activity, recorded, target, calibration, clock,
                                            target.power_limit_w)
    notes = []
    if timeline.energy_j > limit * (timeline.busy_s + timeline.idle_s) * (1 + 1e-6):
        priced, timeline, starts, clock = _capped(activity, recorded, target, calibration, clock, limit)
        notes.append(f"Power capping: the clock was lowered to {clock:.0f} MHz to stay under "
                     f"{limit:.0f} W.")
    energy_j = timeline.energy_j
    duration_s = timeline.busy_s + timeline.idle_s
    warnings = [*analysis.warnings, *match_warnings, *notes]
    warnings += calibration_warnings(calibration, target)
    source = {
        "kind": "trace",
        "path": analysis.trace.path,
        "device": device.device,
        "rank": rank,
        "recorded_gpu": recorded.id,
        "activities": len(activity),
        "signatures": len(device.signatures),
        "steps_method": device.steps.method,
        "launch_link_share": round(analysis.launch_link_share, 4),
        "op_link_share": round(analysis.op_link_share, 4),
        "priced_from_shapes": priced.from_shapes,
    }
    retimed = activity.assign(ts_us=starts, dur_us=priced.target_dur_us)
    shift = _shift_function(activity, starts)
    return Estimate(
        gpu=GpuInfo(name=target.name, profile=target.id, clock_mhz=clock, power_limit_w=limit,
                    idle_power_w=priced.idle_power_w, derived_profile=target.derived),
        source=source,
        energy_j=energy_j,
        duration_s=duration_s,
        avg_power_w=energy_j / duration_s if duration_s > 0 else 0.0,
        busy_s=timeline.busy_s,
        idle_s=timeline.idle_s,
        idle_energy_j=timeline.idle_energy_j,
        by_class=_by_class(retimed, timeline),
        steps=_steps(device, retimed, timeline, shift),
        top_kernels=_top_kernels(retimed, timeline),
        provenance=estimate_provenance(calibration, warnings),
        uncertainty=_uncertainty(energy_j, duration_s, priced.idle_power_w, limit, calibration.kind),
        lower_bound=analysis.trace.report.truncated,
    )


def _timeline_at(activity, recorded, target, calibration, clock, limit):
    recorded_clock = float(recorded.boost_clock_mhz)
    priced = price_activity(activity, recorded, target, calibration, clock, recorded_clock)
    starts = retime(activity["ts_us"].to_numpy(), activity["dur_us"].to_numpy(), priced.target_dur_us)
    timeline = integrate_timeline(starts, priced.target_dur_us, priced.power_w - priced.idle_power_w,
                                  priced.idle_power_w, limit)
    return priced, timeline, starts


def _capped(activity, recorded, target, calibration, clock, limit):
    """Lower the clock until the trace's average power fits under the limit."""
    low, high = min(lowest_clock_mhz(target), clock), clock
    best = _timeline_at(activity, recorded, target, calibration, low, limit) + (low,)
    lowest = best[1]
    if lowest.energy_j > limit * (lowest.busy_s + lowest.idle_s) * (1 + 1e-6):
        raise_limit_unreachable(target, limit, low,
                                lowest.energy_j / max(lowest.busy_s + lowest.idle_s, 1e-12))
    for _ in range(12):
        middle = 0.5 * (low + high)
        priced, timeline, starts = _timeline_at(activity, recorded, target, calibration, middle, limit)
        if timeline.energy_j <= limit * (timeline.busy_s + timeline.idle_s):
            low, best = middle, (priced, timeline, starts, middle)
        else:
            high = middle
    return best


def retime(starts_us: np.ndarray, durations_us: np.ndarray, new_durations_us: np.ndarray) -> np.ndarray:
    """Move activities after each duration change, keeping the gaps between them.

    An activity that starts after everything before it has ended (it is on the timeline's
    critical path) pushes every later activity by its change in duration; activities that
    overlap earlier ones keep their offset within the busy block.
    """
    if not len(starts_us):
        return np.asarray(starts_us, dtype=np.float64)
    order = np.argsort(starts_us, kind="stable")
    start = np.asarray(starts_us, dtype=np.float64)[order]
    change = (np.asarray(new_durations_us) - np.asarray(durations_us))[order]
    reach = np.maximum.accumulate(start + np.asarray(durations_us, dtype=np.float64)[order])
    serial = np.ones(len(start), dtype=bool)
    serial[1:] = start[1:] >= reach[:-1]
    shift = np.concatenate([[0.0], np.cumsum(np.where(serial, change, 0.0))[:-1]])
    moved = np.empty(len(start))
    moved[order] = start + shift
    return moved


def _shift_function(activity: pd.DataFrame, new_starts: np.ndarray):
    """Map an original trace time to the retargeted timeline."""
    original = activity["ts_us"].to_numpy(np.float64)
    order = np.argsort(original, kind="stable")
    sorted_original = original[order]
    shifts = (new_starts - original)[order]

    def shift(time_us: float) -> float:
        index = np.searchsorted(sorted_original, time_us, side="right") - 1
        return time_us + (float(shifts[index]) if index >= 0 else 0.0)

    return shift


def _by_class(activity: pd.DataFrame, timeline: TimelineEnergy) -> list[ClassEnergy]:
    # `.array` keeps the string columns as they are. `.to_numpy()` would turn them into
    # Python strings that the frame then converts back.
    frame = pd.DataFrame({
        "op_class": activity["op_class"].array,
        "dur_us": activity["dur_us"].to_numpy(),
        "energy_j": timeline.activity_energy_j,
    })
    grouped = frame.groupby("op_class", sort=False).agg(
        kernels=("dur_us", "size"), time_us=("dur_us", "sum"), energy_j=("energy_j", "sum")
    ).sort_values("energy_j", ascending=False)
    return [
        ClassEnergy(str(op_class), int(row.kernels), float(row.time_us) * 1e-6, float(row.energy_j))
        for op_class, row in grouped.iterrows()
    ]


def _steps(device: DeviceAnalysis, activity: pd.DataFrame, timeline: TimelineEnergy,
           shift) -> list[StepEnergy]:
    counts = np.bincount(activity["step"].to_numpy() + 1, minlength=len(device.steps.windows) + 1)
    steps = []
    for index, window in enumerate(device.steps.windows):
        start, end = shift(window.start_us), shift(window.end_us)
        steps.append(StepEnergy(
            step=window.step,
            duration_s=max(end - start, 0.0) * 1e-6,
            energy_j=timeline.energy_between(start, end),
            kernels=int(counts[index + 1]),
            inferred=window.inferred,
        ))
    return steps


def _top_kernels(activity: pd.DataFrame, timeline: TimelineEnergy) -> list[KernelEnergy]:
    frame = pd.DataFrame({
        "name": activity["name"].array,
        "op_class": activity["op_class"].array,
        "dur_us": activity["dur_us"].to_numpy(),
        "energy_j": timeline.activity_energy_j,
    })
    grouped = frame.groupby(["name", "op_class"], sort=False).agg(
        count=("dur_us", "size"), time_us=("dur_us", "sum"), energy_j=("energy_j", "sum")
    ).sort_values("energy_j", ascending=False).head(TOP_KERNELS)
    return [
        KernelEnergy(
            name=str(name), op_class=str(op_class), count=int(row["count"]),
            time_s=float(row.time_us) * 1e-6, energy_j=float(row.energy_j),
            avg_power_w=float(row.energy_j) / (float(row.time_us) * 1e-6) if row.time_us > 0 else 0.0,
        )
        for (name, op_class), row in grouped.iterrows()
    ]


def _uncertainty(energy_j: float, duration_s: float, idle_w: float, limit_w: float,
                 kind: str) -> dict[str, float]:
    """Band around the dynamic energy by calibration kind, kept between idle and limit."""
    spread = UNCERTAINTY_BY_KIND.get(kind, 0.35)
    idle_j = idle_w * duration_s
    dynamic_j = max(energy_j - idle_j, 0.0)
    low = idle_j + dynamic_j * (1 - spread)
    high = min(idle_j + dynamic_j * (1 + spread), limit_w * duration_s)
    return {"energy_j_low": min(low, energy_j), "energy_j_high": max(high, energy_j)}
