"""Estimate a workload (a captured model or an op-list file) on a GPU profile."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from energaizer.calibrate.profile import (
    Calibration,
    calibration_warnings,
    estimate_provenance,
)
from energaizer.estimators.combine import TOP_KERNELS
from energaizer.hardware.profiles import GpuProfile
from energaizer.power.simulate import WorkloadRun, simulate_workload
from energaizer.results import ClassEnergy, Estimate, GpuInfo, KernelEnergy
from energaizer.workload.ops import Op
from energaizer.workload.workload import Workload

# Relative spread of the estimate by calibration kind, from cross-validated errors:
# a calibrated GPU misses energy by about the fit's leave-one-model-out MAPE; a GPU
# estimated with the scaled default calibration carries the extra error of the
# scaling. These widths are estimates, widened where no validation exists.
UNCERTAINTY_BY_KIND = {"calibrated": 0.12, "default": 0.20, "uncalibrated": 0.35}


def estimate_workload(workload: Workload, profile: GpuProfile, calibration: Calibration,
                      clock_mhz: float | None = None, power_limit_w: float | None = None,
                      source: dict[str, Any] | None = None) -> Estimate:
    """Predict one pass of `workload` on `profile` and return it as an Estimate."""
    run = simulate_workload(workload, profile, calibration, clock_mhz, power_limit_w)
    totals = _label_totals(workload, run)
    warnings = list(run.notes)
    unmapped = workload.source.get("unmapped_ops")
    if unmapped:
        warnings.append(f"Ops priced as elementwise because no model fits them: {unmapped}.")
    warnings += calibration_warnings(calibration, profile)
    return Estimate(
        gpu=GpuInfo(
            name=profile.name, profile=profile.id, clock_mhz=run.clock_mhz,
            power_limit_w=run.power_limit_w, idle_power_w=run.idle_power_w,
            derived_profile=profile.derived,
        ),
        source={**workload.source, **(source or {}), "launches": int(len(run.time_s)),
                "requested_clock_mhz": run.requested_clock_mhz},
        energy_j=run.energy_j,
        duration_s=run.duration_s,
        avg_power_w=run.avg_power_w,
        busy_s=run.busy_s,
        idle_s=run.idle_s,
        idle_energy_j=run.idle_energy_j,
        by_class=_by_class(totals),
        steps=[],
        top_kernels=_top_ops(totals),
        provenance=estimate_provenance(calibration, warnings),
        uncertainty=_uncertainty(run, calibration.kind, profile),
    )


@dataclass
class _LaunchTotals:
    """Launch count, busy time and energy summed over a set of launches."""

    count: int = 0
    time_s: float = 0.0
    energy_j: float = 0.0


def _label_totals(workload: Workload, run: WorkloadRun) -> dict[tuple[str, str], _LaunchTotals]:
    """Sum the launches of each (op label, op class).

    Ops with the same performance-model key and name get the same label, so launches are
    first summed per such group with numpy and each group's label is built once.
    """
    ops = workload.ops
    _, distinct_index = workload.distinct_ops()
    group_index: dict[tuple, int] = {}
    first_ops: list[Op] = []
    group_of_op = np.empty(len(ops), dtype=np.int64)
    for position, op in enumerate(ops):
        # The label lists geometry in insertion order, which the performance key ignores.
        key = (distinct_index[position], op.name, tuple(op.geometry))
        group = group_index.get(key)
        if group is None:
            group = group_index[key] = len(first_ops)
            first_ops.append(op)
        group_of_op[position] = group

    launch_group = group_of_op[run.op_index]
    groups = len(first_ops)
    counts = np.bincount(launch_group, minlength=groups)
    times_s = np.bincount(launch_group, weights=run.time_s, minlength=groups)
    energies_j = np.bincount(launch_group, weights=run.energy_per_launch_j, minlength=groups)
    totals: dict[tuple[str, str], _LaunchTotals] = {}
    for group, op in enumerate(first_ops):
        if not counts[group]:
            continue
        total = totals.setdefault((_op_label(op), op.op_class.value), _LaunchTotals())
        total.count += int(counts[group])
        total.time_s += float(times_s[group])
        total.energy_j += float(energies_j[group])
    return totals


def _op_label(op: Op) -> str:
    sizes = ",".join(f"{key}={value}" for key, value in op.geometry.items()
                     if isinstance(value, (int, float)) and not isinstance(value, bool))
    return f"{op.name}[{sizes}] {op.dtype}" if sizes else f"{op.name} {op.dtype}"


def _by_class(totals: dict[tuple[str, str], _LaunchTotals]) -> list[ClassEnergy]:
    """Sum the labels of each op class, highest energy first, ties in class name order."""
    classes: dict[str, _LaunchTotals] = {}
    for (_, op_class), total in totals.items():
        merged = classes.setdefault(op_class, _LaunchTotals())
        merged.count += total.count
        merged.time_s += total.time_s
        merged.energy_j += total.energy_j
    ordered = sorted(sorted(classes.items()), key=lambda entry: entry[1].energy_j, reverse=True)
    return [ClassEnergy(op_class, total.count, total.time_s, total.energy_j)
            for op_class, total in ordered]


def _top_ops(totals: dict[tuple[str, str], _LaunchTotals]) -> list[KernelEnergy]:
    """Return the TOP_KERNELS labels with the highest energy, ties in label order."""
    ordered = sorted(sorted(totals.items()), key=lambda entry: entry[1].energy_j, reverse=True)
    return [
        KernelEnergy(name, op_class, total.count, total.time_s, total.energy_j,
                     total.energy_j / total.time_s if total.time_s > 0 else 0.0)
        for (name, op_class), total in ordered[:TOP_KERNELS]
    ]


def _uncertainty(run: WorkloadRun, kind: str, profile: GpuProfile) -> dict[str, float]:
    spread = UNCERTAINTY_BY_KIND.get(kind, 0.35)
    low = max(run.energy_j * (1 - spread), 0.0)
    high = min(run.energy_j * (1 + spread), run.power_limit_w * run.duration_s * (1 + spread))
    return {"energy_j_low": low, "energy_j_high": max(high, run.energy_j)}


def per_phase(workload: Workload, run: WorkloadRun) -> dict[str, float]:
    """Energy per workload phase (forward, backward, optimizer ...), busy time only."""
    phases = np.array([workload.ops[i].phase or "pass" for i in run.op_index])
    energy = run.energy_per_launch_j
    return {phase: float(energy[phases == phase].sum()) for phase in np.unique(phases)}
