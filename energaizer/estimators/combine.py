"""Combine the estimates of several GPUs that ran one job."""

from __future__ import annotations

from typing import Any

from energaizer.results import ClassEnergy, Estimate, GpuInfo, KernelEnergy, StepEnergy

TOP_KERNELS = 10


def combine_estimates(parts: list[Estimate], source: dict[str, Any]) -> Estimate:
    """Sum the estimates of several GPUs that ran one job at the same time.

    Energy, busy and idle time and op-class figures are summed over GPUs; the duration is
    the longest part's, so `avg_power_w` is the job's total draw. Every GPU is held for
    the whole job, so a part that ends sooner waits at its idle power for the rest.
    """
    duration_s = max(part.duration_s for part in parts)
    waits_s = [max(duration_s - part.duration_s, 0.0) for part in parts]
    wait_energy_j = sum(part.gpu.idle_power_w * wait for part, wait in zip(parts, waits_s))
    energy_j = sum(part.energy_j for part in parts) + wait_energy_j
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
        idle_s=sum(part.idle_s for part in parts) + sum(waits_s),
        idle_energy_j=sum(part.idle_energy_j for part in parts) + wait_energy_j,
        by_class=_merge_classes(parts),
        steps=_merge_steps(parts),
        top_kernels=_merge_kernels(parts),
        provenance={**parts[0].provenance, "warnings": warnings},
        uncertainty={
            "energy_j_low": sum(p.uncertainty["energy_j_low"] for p in parts) + wait_energy_j,
            "energy_j_high": sum(p.uncertainty["energy_j_high"] for p in parts) + wait_energy_j,
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
