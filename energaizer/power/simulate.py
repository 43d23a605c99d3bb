"""Run a workload through the performance and power models on one GPU.

Each launch gets its time and module activity from the performance model, its power from
the calibrated coefficients at the clock's voltage, and its place on the GPU timeline
from the eager-launch pipeline. When the average power would exceed the power limit the
GPU lowers its clock, as its power capping does, so time stretches as power falls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from energaizer.calibrate.profile import Calibration
from energaizer.hardware.profiles import GpuProfile
from energaizer.perf import predict_ops
from energaizer.power.coefficients import CORE_MODULES
from energaizer.power.dvfs import DvfsCurves, dvfs_curves
from energaizer.power.limits import lowest_clock_mhz, raise_limit_unreachable
from energaizer.power.pipeline import gpu_schedule, issue_intervals
from energaizer.workload.workload import Workload

_CLOCK_SEARCH_STEPS = 14


@dataclass
class WorkloadRun:
    """Predicted time, power and energy of every launch of a workload."""

    clock_mhz: float  # the clock the GPU ran at, after any power capping
    requested_clock_mhz: float
    power_limit_w: float
    op_index: np.ndarray  # index into workload.ops of each launch
    time_s: np.ndarray  # per launch
    power_w: np.ndarray  # per launch, while it runs
    start_s: np.ndarray
    duration_s: float
    idle_power_w: float
    throttled: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def energy_per_launch_j(self) -> np.ndarray:
        return self.power_w * self.time_s

    @property
    def busy_s(self) -> float:
        return float(self.time_s.sum())

    @property
    def idle_s(self) -> float:
        return max(self.duration_s - self.busy_s, 0.0)

    @property
    def idle_energy_j(self) -> float:
        return self.idle_power_w * self.idle_s

    @property
    def energy_j(self) -> float:
        return float(self.energy_per_launch_j.sum() + self.idle_energy_j)

    @property
    def avg_power_w(self) -> float:
        return self.energy_j / self.duration_s if self.duration_s > 0 else 0.0


def simulate_workload(
    workload: Workload,
    profile: GpuProfile,
    calibration: Calibration,
    clock_mhz: float | None = None,
    power_limit_w: float | None = None,
) -> WorkloadRun:
    """Predict the run of `workload`; `power_limit_w` below the profile's limit caps it."""
    requested = float(clock_mhz or profile.boost_clock_mhz)
    limit = float(min(power_limit_w or profile.power_limit_w, profile.power_limit_w))
    curves = dvfs_curves(profile)
    run = _run_at(workload, profile, calibration, curves, requested, requested, limit)
    if run.avg_power_w > limit * (1 + 1e-6):
        run = _capped_run(workload, profile, calibration, curves, requested, limit)
    return _limited(run)


def _limited(run: WorkloadRun) -> WorkloadRun:
    """Clip each launch's power to the limit, which the GPU's fast power capping
    enforces on short bursts that the average alone does not show."""
    run.power_w = np.minimum(run.power_w, run.power_limit_w)
    return run


def _capped_run(workload, profile, calibration, curves, requested, limit) -> WorkloadRun:
    """Find the highest clock at or below the requested one whose average power stays
    within the limit. Raises InputError when even the lowest clock exceeds it."""
    low, high = min(lowest_clock_mhz(profile), requested), requested
    best = _run_at(workload, profile, calibration, curves, low, requested, limit)
    if best.avg_power_w > limit * (1 + 1e-6):
        raise_limit_unreachable(profile, limit, low, best.avg_power_w)
    for _ in range(_CLOCK_SEARCH_STEPS):
        middle = 0.5 * (low + high)
        run = _run_at(workload, profile, calibration, curves, middle, requested, limit)
        if run.avg_power_w <= limit:
            low, best = middle, run
        else:
            high = middle
    best.throttled = True
    best.notes.append(
        f"Power capping: the average power at {requested:.0f} MHz exceeds the {limit:.0f} W "
        f"limit, so the clock was lowered to {best.clock_mhz:.0f} MHz."
    )
    return best


def launch_intervals(workload: Workload, calibration: Calibration) -> np.ndarray:
    """CPU time before each op's launch; zero when the workload is not launched eagerly."""
    if not workload.eager_launches:
        return np.zeros(len(workload.ops))
    calls = np.array([op.cpu_calls for op in workload.ops], dtype=np.float64)
    modules = np.array([op.module_calls for op in workload.ops], dtype=np.float64)
    return issue_intervals(calls, modules, calibration.dispatch_s, calibration.call_s,
                           calibration.module_s)


def _run_at(workload, profile, calibration, curves: DvfsCurves, clock_mhz: float,
            requested: float, limit: float) -> WorkloadRun:
    distinct, inverse = workload.distinct_ops()
    table = predict_ops(distinct, profile, clock_mhz, calibration.corrections)
    counts = np.array([op.count for op in workload.ops], dtype=np.int64)
    op_index = np.repeat(np.arange(len(workload.ops)), counts)
    idle_w = curves.idle_power_w(clock_mhz)
    scale = curves.dynamic_scale(clock_mhz)
    coefficients = calibration.power
    core_w = coefficients.get("active") * np.ones(len(distinct))
    for module in CORE_MODULES[1:]:
        core_w = core_w + coefficients.get(module) * table.activity[module]
    distinct_power = idle_w + scale * core_w + coefficients.get("dram") * table.activity["dram"]
    op_power = distinct_power[inverse]
    time_s = np.asarray(table.time_s, dtype=np.float64)[inverse][op_index]
    starts, duration = gpu_schedule(time_s, launch_intervals(workload, calibration)[op_index])
    return WorkloadRun(
        clock_mhz=clock_mhz,
        requested_clock_mhz=requested,
        power_limit_w=limit,
        op_index=op_index,
        time_s=time_s,
        power_w=op_power[op_index],
        start_s=starts,
        duration_s=duration,
        idle_power_w=idle_w,
    )
