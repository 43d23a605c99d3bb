"""Estimate the energy of a workload on a GPU.

`estimate()` is the Python entry point; the CLI's `estimate` command calls it. A trace
is read, analyzed per GPU, priced with the power model and integrated over its
timeline; a folder of per-rank traces gives one estimate per rank and their total.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from energaizer.analyze.analysis import DeviceAnalysis, TraceAnalysis, analyze_trace
from energaizer.errors import InputError, NotNvidiaTraceError, TraceError
from energaizer.hardware.matching import match_device
from energaizer.hardware.profiles import GpuProfile, load_profile
from energaizer.power.timeline import TimelineEnergy, integrate_timeline
from energaizer.power.uncalibrated import (
    DYNAMIC_UNCERTAINTY,
    IDLE_UNCERTAINTY,
    POWER_MODEL_NAME,
    dynamic_power_w,
)
from energaizer.results import ClassEnergy, Estimate, GpuInfo, KernelEnergy, StepEnergy
from energaizer.trace import is_trace_folder, read_trace, read_trace_folder

TOP_KERNELS = 10
UNCALIBRATED_WARNING = (
    "The power model is uncalibrated: per-op-class power shares are engineering "
    "assumptions, not fitted to measurements of this GPU."
)


def estimate(*, trace: str | Path | None = None, gpu: str | None = None,
             lenient: bool = False) -> Estimate:
    """Estimate energy, power and time.

    `trace` is a profiler trace file, a folder of per-rank traces or a tar archive of
    one. `gpu` names a GPU profile (id, name or YAML path) to use instead of the one
    matched from the trace. With `lenient`, broken events are skipped and a truncated
    trace is estimated from its complete events (the totals are then lower bounds).
    """
    if trace is None:
        raise InputError("Nothing to estimate: pass trace=PATH.")
    return estimate_trace(trace, gpu=gpu, lenient=lenient)


def estimate_trace(path: str | Path, gpu: str | None = None, lenient: bool = False) -> Estimate:
    """Estimate one trace file, or every rank of a folder or tar archive of traces."""
    profile = load_profile(gpu) if gpu else None
    if is_trace_folder(path):
        ranks = [
            _estimate_analysis(analyze_trace(item.trace), profile, rank=item.rank)
            for item in read_trace_folder(path, lenient=lenient)
        ]
        return combine_estimates(ranks, {"kind": "trace", "path": str(path), "ranks": len(ranks)})
    return _estimate_analysis(analyze_trace(read_trace(path, lenient=lenient)), profile)


def _estimate_analysis(
    analysis: TraceAnalysis, profile: GpuProfile | None, rank: int | None = None
) -> Estimate:
    trace = analysis.trace
    if analysis.vendor == "amd" and profile is None:
        names = ", ".join(sorted({str(p.get("name")) for p in trace.device_properties})) or "an AMD GPU"
        raise NotNvidiaTraceError(
            f"{trace.path}: the trace was recorded on {names}, not an NVIDIA GPU. "
            "energaizer models NVIDIA GPUs; pass --gpu with a profile for this GPU to "
            "estimate it anyway.",
            path=trace.path,
        )
    if not analysis.devices:
        raise TraceError(
            f"{trace.path}: the trace contains no GPU kernels, memcpys or memsets. Record it "
            "with torch.profiler and ProfilerActivity.CUDA enabled.",
            path=trace.path,
        )
    estimates = []
    for device in analysis.devices:
        device_profile, match_warnings = _profile_for(analysis, device.device, profile)
        estimates.append(
            _estimate_device(analysis, device, device_profile, match_warnings, rank)
        )
    if len(estimates) == 1:
        return estimates[0]
    return combine_estimates(estimates, {"kind": "trace", "path": trace.path, "devices": len(estimates)})


def _profile_for(
    analysis: TraceAnalysis, device: int, given: GpuProfile | None
) -> tuple[GpuProfile, list[str]]:
    trace = analysis.trace
    properties = trace.device_properties_for(device)
    if properties is None and trace.device_properties:
        properties = trace.device_properties[0]
    if given is not None:
        warnings = []
        if properties is not None and given.derived is False:
            recorded = str(properties.get("name", ""))
            matched = _quiet_match(properties)
            if matched is not None and matched.id != given.id:
                warnings.append(
                    f"The trace was recorded on {recorded}; kernel times are kept as recorded "
                    f"and priced with the power figures of {given.id}."
                )
        return given, warnings
    if properties is None:
        raise TraceError(
            f"{trace.path}: the trace records no deviceProperties, so its GPU is unknown. "
            "Pass --gpu ID to name it (`energaizer profiles` lists the ids).",
            path=trace.path,
        )
    return match_device(properties)


def _quiet_match(properties: dict[str, Any]) -> GpuProfile | None:
    try:
        return match_device(properties)[0]
    except InputError:
        return None


def _estimate_device(
    analysis: TraceAnalysis,
    device: DeviceAnalysis,
    profile: GpuProfile,
    match_warnings: list[str],
    rank: int | None,
) -> Estimate:
    activity = device.activity
    power = dynamic_power_w(activity, profile)
    timeline = integrate_timeline(
        activity["ts_us"].to_numpy(), activity["dur_us"].to_numpy(), power.dynamic_w,
        profile.idle_power_w, profile.power_limit_w,
    )
    energy_j = timeline.energy_j
    duration_s = timeline.busy_s + timeline.idle_s
    warnings = [*analysis.warnings, *match_warnings, UNCALIBRATED_WARNING]
    source = {
        "kind": "trace",
        "path": analysis.trace.path,
        "device": device.device,
        "rank": rank,
        "activities": len(activity),
        "signatures": len(device.signatures),
        "steps_method": device.steps.method,
        "launch_link_share": round(analysis.launch_link_share, 4),
        "op_link_share": round(analysis.op_link_share, 4),
        "priced_from_shapes": power.from_shapes,
    }
    return Estimate(
        gpu=_gpu_info(profile),
        source=source,
        energy_j=energy_j,
        duration_s=duration_s,
        avg_power_w=energy_j / duration_s if duration_s > 0 else 0.0,
        busy_s=timeline.busy_s,
        idle_s=timeline.idle_s,
        idle_energy_j=timeline.idle_energy_j,
        by_class=_by_class(activity, timeline),
        steps=_steps(device, timeline),
        top_kernels=_top_kernels(activity, timeline),
        provenance={"power_model": "default", "calibration": POWER_MODEL_NAME,
                    "warnings": warnings},
        uncertainty=_uncertainty(energy_j, duration_s, profile),
        lower_bound=analysis.trace.report.truncated,
    )


def _gpu_info(profile: GpuProfile) -> GpuInfo:
    return GpuInfo(
        name=profile.name,
        profile=profile.id,
        clock_mhz=float(profile.boost_clock_mhz),
        power_limit_w=float(profile.power_limit_w),
        idle_power_w=float(profile.idle_power_w),
        derived_profile=profile.derived,
    )


def _by_class(activity: pd.DataFrame, timeline: TimelineEnergy) -> list[ClassEnergy]:
    frame = pd.DataFrame({
        "op_class": activity["op_class"].to_numpy(),
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


def _steps(device: DeviceAnalysis, timeline: TimelineEnergy) -> list[StepEnergy]:
    counts = np.bincount(device.activity["step"].to_numpy() + 1, minlength=len(device.steps.windows) + 1)
    return [
        StepEnergy(
            step=window.step,
            duration_s=(window.end_us - window.start_us) * 1e-6,
            energy_j=timeline.energy_between(window.start_us, window.end_us),
            kernels=int(counts[index + 1]),
            inferred=window.inferred,
        )
        for index, window in enumerate(device.steps.windows)
    ]


def _top_kernels(activity: pd.DataFrame, timeline: TimelineEnergy) -> list[KernelEnergy]:
    frame = pd.DataFrame({
        "name": activity["name"].to_numpy(),
        "op_class": activity["op_class"].to_numpy(),
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


def _uncertainty(energy_j: float, duration_s: float, profile: GpuProfile) -> dict[str, float]:
    """Band from the spread of the uncalibrated shares, kept between idle and limit."""
    idle_j = profile.idle_power_w * duration_s
    dynamic_j = max(energy_j - idle_j, 0.0)
    low = idle_j * (1 - IDLE_UNCERTAINTY) + dynamic_j * (1 - DYNAMIC_UNCERTAINTY)
    high = idle_j * (1 + IDLE_UNCERTAINTY) + dynamic_j * (1 + DYNAMIC_UNCERTAINTY)
    high = min(high, profile.power_limit_w * duration_s)
    return {"energy_j_low": min(low, energy_j), "energy_j_high": max(high, energy_j)}


def combine_estimates(parts: list[Estimate], source: dict[str, Any]) -> Estimate:
    """Sum the estimates of several GPUs that ran one job at the same time.

    Energy, busy and idle time and op-class figures are summed over GPUs; the duration is
    the longest part's, so `avg_power_w` is the job's total draw.
    """
    energy_j = sum(part.energy_j for part in parts)
    duration_s = max(part.duration_s for part in parts)
    profiles = sorted({part.gpu.profile for part in parts})
    first = parts[0].gpu
    gpu = GpuInfo(
        name=f"{len(parts)} x {first.name}" if len(profiles) == 1 else f"{len(parts)} GPUs",
        profile=first.profile if len(profiles) == 1 else ",".join(profiles),
        clock_mhz=first.clock_mhz,
        power_limit_w=sum(part.gpu.power_limit_w for part in parts),
        idle_power_w=sum(part.gpu.idle_power_w for part in parts),
        derived_profile=any(part.gpu.derived_profile for part in parts),
    )
    warnings: list[str] = []
    for part in parts:
        warnings.extend(w for w in part.warnings if w not in warnings)
    return Estimate(
        gpu=gpu,
        source=source,
        energy_j=energy_j,
        duration_s=duration_s,
        avg_power_w=energy_j / duration_s if duration_s > 0 else 0.0,
        busy_s=sum(part.busy_s for part in parts),
        idle_s=sum(part.idle_s for part in parts),
        idle_energy_j=sum(part.idle_energy_j for part in parts),
        by_class=_merge_classes(parts),
        steps=_merge_steps(parts),
        top_kernels=_merge_kernels(parts),
        provenance={**parts[0].provenance, "warnings": warnings},
        uncertainty={
            "energy_j_low": sum(p.uncertainty["energy_j_low"] for p in parts),
            "energy_j_high": sum(p.uncertainty["energy_j_high"] for p in parts),
        },
        ranks=parts,
        lower_bound=any(part.lower_bound for part in parts),
    )


def _merge_classes(parts: list[Estimate]) -> list[ClassEnergy]:
    merged: dict[str, ClassEnergy] = {}
    for part in parts:
        for item in part.by_class:
            total = merged.setdefault(item.op_class, ClassEnergy(item.op_class, 0, 0.0, 0.0))
            total.kernels += item.kernels
            total.time_s += item.time_s
            total.energy_j += item.energy_j
    return sorted(merged.values(), key=lambda item: item.energy_j, reverse=True)


def _merge_steps(parts: list[Estimate]) -> list[StepEnergy]:
    merged: dict[str, StepEnergy] = {}
    for part in parts:
        for item in part.steps:
            total = merged.setdefault(item.step, StepEnergy(item.step, 0.0, 0.0, 0, item.inferred))
            total.duration_s = max(total.duration_s, item.duration_s)
            total.energy_j += item.energy_j
            total.kernels += item.kernels
    return list(merged.values())


def _merge_kernels(parts: list[Estimate]) -> list[KernelEnergy]:
    merged: dict[tuple[str, str], KernelEnergy] = {}
    for part in parts:
        for item in part.top_kernels:
            key = (item.name, item.op_class)
            total = merged.setdefault(key, KernelEnergy(item.name, item.op_class, 0, 0.0, 0.0, 0.0))
            total.count += item.count
            total.time_s += item.time_s
            total.energy_j += item.energy_j
    for total in merged.values():
        total.avg_power_w = total.energy_j / total.time_s if total.time_s > 0 else 0.0
    return sorted(merged.values(), key=lambda item: item.energy_j, reverse=True)[:TOP_KERNELS]
