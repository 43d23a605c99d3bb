"""Calibrate on a GPU (`energaizer calibrate --device N`, or `--simulate`).

The plan's points run one after another. Each measured point is appended to a JSON Lines
file before the next starts, so `--resume` continues a killed run without losing any.
The points are fitted with the same fitter as `calibrate --from`, which gives one time
correction per correction group and non-negative power coefficients per module. Every fifth point
is held out of a first fit to report errors on unseen points, and the profile written
(atomically) is then fitted on all points.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from energaizer.calibrate.fit import PreparedRow, fit_power, fit_time, group_of, power_features
from energaizer.calibrate.measurements import Measurement
from energaizer.calibrate.plan import DEFAULT_BUDGET_S, PlanPoint, full_plan, scale_plan
from energaizer.calibrate.points import PointStore
from energaizer.calibrate.profile import REFERENCE_GPU, Calibration, save_calibration
from energaizer.errors import InputError
from energaizer.hardware.profiles import GpuProfile
from energaizer.perf import analytical_phases
from energaizer.progress import ProgressCallback
from energaizer.workload.workload import Workload

logger = logging.getLogger(__name__)

HOLD_OUT_EVERY = 5  # every fifth fitted point is held out of the validation fit


def run_plan(runner: Any, store: PointStore, *, budget_s: float = DEFAULT_BUDGET_S,
             resume: bool = False, on_point: Callable[[dict], None] | None = None,
             progress: ProgressCallback | None = None) -> dict[str, dict]:
    """Measure every plan point not yet in `store`; return all recorded points by key.

    `progress` is called with (points done, points in the plan), resumed ones included.
    """
    plan = scale_plan(full_plan(), budget_s)
    records = store.start(resume)
    logger.info("calibration plan: %d points, %.0f s; %d already measured", len(plan.points),
                plan.duration_s, len(records))
    done = sum(1 for point in plan.points if point.key in records)
    if progress is not None:
        progress(done, len(plan.points))
    for point in plan.points:
        if point.key in records:
            continue
        record = runner.measure(point, plan.warmup_s, plan.steady_s)
        store.append(record)
        records[point.key] = record
        logger.info("point %s: %.1f W", point.key, record["power_w"])
        if on_point is not None:
            on_point(record)
        done += 1
        if progress is not None:
            progress(done, len(plan.points))
    return records


def _row(point: PlanPoint, record: dict, profile: GpuProfile) -> PreparedRow:
    op = point.op()
    clock_mhz = float(record["sm_clock_mhz"])
    measurement = Measurement(
        model=point.key, dtype=op.dtype, batch=1, seq=None, phase="forward",
        attention="default", gpu=profile.id, clock_mhz=clock_mhz,
        time_ms=record["time_s"] * 1e3, energy_j=record["power_w"] * record["time_s"],
    )
    workload = Workload(point.key, [op], source={"microbenchmark": point.kind},
                        eager_launches=False)
    return PreparedRow(measurement, workload, clock_mhz,
                       analytical_phases([op], profile, clock_mhz), np.array([group_of(op)]),
                       np.array([op.cpu_calls], dtype=float), np.array([0.0]))


def _errors(rows: list[PreparedRow], profile: GpuProfile, training: list[PreparedRow]) -> dict:
    """Fit on `training` and return the percentage errors on `rows`."""
    timing = fit_time(training)
    power = fit_power(training, profile, timing)
    coefficients = np.array(list(power.to_dict().values()))
    time_errors, power_errors, energy_errors = [], [], []
    for row in rows:
        features, idle_w, time_s = power_features(row, profile, timing)
        power_w = idle_w + float(features @ coefficients)
        measured = row.measurement
        time_errors.append(abs(time_s / measured.time_s - 1))
        power_errors.append(abs(power_w / measured.power_w - 1))
        energy_errors.append(abs(power_w * time_s / measured.energy_j - 1))
    return {"rows": len(rows), "time_mape": 100 * float(np.mean(time_errors)),
            "power_mape": 100 * float(np.mean(power_errors)),
            "energy_mape": 100 * float(np.mean(energy_errors))}


def fit_points(records: dict[str, dict], profile: GpuProfile, identity: dict[str, Any],
               source: str) -> Calibration:
    """Fit a calibration to measured points, with errors on held-out points."""
    points = {point.key: point for point in full_plan()}
    usable = [key for key in points if key in records and points[key].op() is not None]
    rows = [_row(points[key], records[key], profile) for key in usable]
    if len(rows) < 2 * HOLD_OUT_EVERY:
        raise InputError(f"Only {len(rows)} measured points; at least {2 * HOLD_OUT_EVERY} "
                         "are needed to fit and hold some out. Raise --budget-s.")
    held_out = rows[HOLD_OUT_EVERY // 2::HOLD_OUT_EVERY]
    training = [row for row in rows if not any(row is other for other in held_out)]
    validation = {"method": f"held out every {HOLD_OUT_EVERY}th point",
                  **_errors(held_out, profile, training)}

    timing = fit_time(rows)
    power = fit_power(rows, profile, timing)
    idle = records.get("idle")
    values = list(records.values())
    return Calibration(
        gpu=profile.id, power=power, corrections=timing.corrections,
        dispatch_s=timing.launch_s, call_s=timing.call_s, module_s=timing.module_s,
        kind="calibrated", source=source, identity=identity,
        conditions={
            "clocks_mhz": sorted({float(r["sm_clock_mhz"]) for r in values}),
            "temperature_c": [min(r["temperature_c"] for r in values),
                              max(r["temperature_c"] for r in values)],
            "power_limit_w": sorted({float(r["power_limit_w"]) for r in values}),
            "idle_power_w": None if idle is None else idle["power_w"],
        },
        fitted_on={"points": len(rows), "source": source,
                   "label": "simulated" if identity.get("simulated") else "measured"},
        validation=validation,
    )


def calibrate_device(runner: Any, profile: GpuProfile, output: Path, *,
                     points_path: Path | None = None, budget_s: float = DEFAULT_BUDGET_S,
                     resume: bool = False, on_point: Callable[[dict], None] | None = None,
                     progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Measure the plan with `runner`, fit it and write the profile to `output`."""
    store = PointStore(points_path or output.with_suffix(".points.jsonl"))
    try:
        records = run_plan(runner, store, budget_s=budget_s, resume=resume, on_point=on_point,
                           progress=progress)
    finally:
        runner.close()
    identity = runner.identity()
    source = "simulated GPU" if identity.get("simulated") else f"GPU {identity['uuid']}"
    calibration = fit_points(records, profile, identity, source)
    save_calibration(calibration, output)
    return {"gpu": profile.id, "output": str(output), "points_file": str(store.path),
            "points": len(records), "simulated": bool(identity.get("simulated")),
            "validation": calibration.validation, "calibration": calibration.to_dict()}


def calibrate_simulated(gpu: str | None, output: Path | None, *,
                        budget_s: float = DEFAULT_BUDGET_S, resume: bool = False,
                        coefficients: dict[str, float] | None = None,
                        on_point: Callable[[dict], None] | None = None,
                        progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Run the whole calibration against a simulated GPU with known coefficients.

    The profile is labelled simulated and written to `<profile id>-simulated.json` unless
    `output` is given.
    """
    from energaizer.calibrate.runners import SimulatedRunner
    from energaizer.hardware.profiles import load_profile
    from energaizer.hardware.simulated import DEFAULT_COEFFICIENTS

    profile = load_profile(gpu or REFERENCE_GPU)
    runner = SimulatedRunner(profile, dict(coefficients or DEFAULT_COEFFICIENTS))
    target = output or Path(f"{profile.id}-simulated.json")
    return calibrate_device(runner, profile, target, budget_s=budget_s, resume=resume,
                            on_point=on_point, progress=progress)


def calibrate_on_device(device: str, gpu: str | None, output: Path | None, *,
                        budget_s: float = DEFAULT_BUDGET_S, resume: bool = False,
                        lock_clocks_mhz: int | None = None,
                        progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Calibrate the GPU named by `device` (CUDA ordinal or UUID) with torch on CUDA."""
    from energaizer.calibrate.runners import CudaRunner
    from energaizer.hardware.devices import resolve_devices
    from energaizer.hardware.nvml import Nvml
    from energaizer.hardware.profiles import load_profile

    with Nvml() as nvml:
        (resolved,) = resolve_devices(nvml, [device])
        if resolved.shared:
            raise InputError(f"{device} is a MIG slice; calibrate the whole GPU instead.")
        profile = load_profile(gpu or resolved.device.name)
        if resolved.cuda_ordinal is None:
            raise InputError(f"GPU {device} is not visible to CUDA; check CUDA_VISIBLE_DEVICES.")
        ordinal = resolved.cuda_ordinal
        runner = CudaRunner(nvml, resolved.device, ordinal, lock_clocks_mhz)
        target = output or Path(f"{profile.id}.json")
        return calibrate_device(runner, profile, target, budget_s=budget_s, resume=resume,
                                progress=progress)
