"""Estimate a workload (a captured model or an op-list file) on a GPU profile."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from energaizer.calibrate.profile import Calibration
from energaizer.estimators.combine import TOP_KERNELS
from energaizer.hardware.profiles import GpuProfile
from energaizer.power.simulate import WorkloadRun, simulate_workload
from energaizer.results import ClassEnergy, Estimate, GpuInfo, KernelEnergy
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
    launches = _launch_frame(workload, run)
    warnings = list(run.notes)
    unmapped = workload.source.get("unmapped_ops")
    if unmapped:
        warnings.append(f"Ops priced as elementwise because no model fits them: {unmapped}.")
    if calibration.kind != "calibrated":
        warnings.append(f"{profile.id} has no measured calibration; using {calibration.source}.")
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
        by_class=_by_class(launches),
        steps=[],
        top_kernels=_top_ops(launches),
        provenance={
            "power_model": "calibrated" if calibration.kind == "calibrated" else "default",
            "calibration": calibration.source or calibration.kind,
            "calibration_kind": calibration.kind,
            "validation": calibration.validation.get("summary", {}),
            "warnings": warnings,
        },
        uncertainty=_uncertainty(run, calibration.kind, profile),
    )


def _launch_frame(workload: Workload, run: WorkloadRun) -> pd.DataFrame:
    ops = workload.ops
    return pd.DataFrame({
        "op_class": [ops[i].op_class.value for i in run.op_index],
        "name": [_op_label(ops[i]) for i in run.op_index],
        "time_s": run.time_s,
        "energy_j": run.energy_per_launch_j,
    })


def _op_label(op) -> str:
    sizes = ",".join(f"{key}={value}" for key, value in op.geometry.items()
                     if isinstance(value, (int, float)) and not isinstance(value, bool))
    return f"{op.name}[{sizes}] {op.dtype}" if sizes else f"{op.name} {op.dtype}"


def _by_class(launches: pd.DataFrame) -> list[ClassEnergy]:
    grouped = launches.groupby("op_class").agg(
        kernels=("time_s", "size"), time_s=("time_s", "sum"), energy_j=("energy_j", "sum")
    ).sort_values("energy_j", ascending=False)
    return [ClassEnergy(str(name), int(row.kernels), float(row.time_s), float(row.energy_j))
            for name, row in grouped.iterrows()]


def _top_ops(launches: pd.DataFrame) -> list[KernelEnergy]:
    grouped = launches.groupby(["name", "op_class"]).agg(
        count=("time_s", "size"), time_s=("time_s", "sum"), energy_j=("energy_j", "sum")
    ).sort_values("energy_j", ascending=False).head(TOP_KERNELS)
    return [
        KernelEnergy(str(name), str(op_class), int(row["count"]), float(row.time_s),
                     float(row.energy_j),
                     float(row.energy_j / row.time_s) if row.time_s > 0 else 0.0)
        for (name, op_class), row in grouped.iterrows()
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
