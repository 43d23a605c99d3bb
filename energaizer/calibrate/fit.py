"""Fit time corrections and power coefficients to a measurement set, and cross-validate.

Time: every op's predicted time is l1 x prologue + l2 x main loop + l3 x epilogue + l4,
with one set of non-negative l's for each group of ops: GEMM-like classes (GEMM,
convolution, attention) on tensor cores, the same on CUDA cores, and memory-bound
classes; plus the CPU time eager launching spends per launch, per torch call and per
nn.Module call.
They are fitted by bounded least squares on the log of the pass time, because the
launch pipeline makes pass time a non-linear function of them. A weak prior pulls each
group's corrections toward the analytical model, so a group that few rows exercise
does not absorb those rows' quirks.

Power: with times fixed, the average power of a pass is linear in the coefficients:
P = P_idle(f) + sum_m c_m x F_m, where F_m is module m's activity-weighted share of the
pass (scaled by V^2 f for core modules). Bounded least squares on the relative error of
each row gives the c_m, each between zero and the GPU's power headroom.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares, lsq_linear

from energaizer.analyze.opclass import OpClass
from energaizer.calibrate.measurements import Measurement
from energaizer.calibrate.profile import Calibration
from energaizer.errors import InputError
from energaizer.hardware.profiles import GpuProfile
from energaizer.perf import Corrections, analytical_phases, predict_ops
from energaizer.perf.corrections import CUDA_CORE, CorrectionKey
from energaizer.power.coefficients import CORE_MODULES, POWER_MODULES, PowerCoefficients
from energaizer.power.dvfs import dvfs_curves
from energaizer.power.pipeline import gpu_schedule, issue_intervals
from energaizer.workload.build import model_workload
from energaizer.workload.workload import Workload

logger = logging.getLogger(__name__)

COMPUTE_CLASSES = frozenset({OpClass.GEMM, OpClass.CONVOLUTION, OpClass.ATTENTION})
GROUPS = ("tensor core", "cuda core", "memory")
# Starting point, bounds and units of the time parameters: four l's per group (l4 in
# microseconds), then the CPU time per launch, per torch call and per nn.Module call,
# in microseconds. The bounds keep each correction near the analytical model: a fit may
# stretch the pipeline fill or the output write severalfold, the main loop only within
# about two.
_GROUP_START, _GROUP_LOWER, _GROUP_UPPER = [1.0, 1.0, 1.0, 2.0], [0.0, 0.5, 0.0, 0.0], [3.0, 2.5, 3.0, 10.0]
_START = _GROUP_START * len(GROUPS) + [5.0, 3.0, 3.0]
_LOWER = _GROUP_LOWER * len(GROUPS) + [0.0, 0.0, 0.0]
_UPPER = _GROUP_UPPER * len(GROUPS) + [100.0, 50.0, 50.0]
_MICROSECOND_PARAMETERS = tuple(4 * g + 3 for g in range(len(GROUPS))) + tuple(
    range(4 * len(GROUPS), 4 * len(GROUPS) + 3))
# Weight of the prior on the group corrections, per parameter, next to one log-time
# residual per row. The prior's center is the starting point: the analytical phases
# (l1 = l2 = l3 = 1) and a 2 us setup per launch. A deviation of 1 in l1-l3, or of
# 10 us in l4, counts as one unit.
# The weight was chosen among 0.03, 0.05, 0.1 and 0.3 by the leave-one-model-out errors
# of the A100-PCIe and A10 sets, so those errors are slightly optimistic.
TIME_PRIOR_WEIGHT = 0.05
_PRIOR_UNITS = np.array([1.0, 1.0, 1.0, 10.0] * len(GROUPS))


def group_of(op) -> int:
    """Index in GROUPS of the correction group an op belongs to."""
    if op.op_class in COMPUTE_CLASSES:
        return 0 if op.tensor_cores else 1
    return 2
# No module may draw more than this share of the power headroom at full activity.
_MAX_HEADROOM_SHARE = 1.0


@dataclass
class PreparedRow:
    """A measurement with its workload and the analytical phases of every launch."""

    measurement: Measurement
    workload: Workload
    clock_mhz: float
    phases: np.ndarray  # (launches, 4): prologue, main, epilogue, 1
    group: np.ndarray  # (launches,): index into GROUPS
    cpu_calls: np.ndarray  # (launches,): torch calls before each launch
    module_calls: np.ndarray  # (launches,): nn.Module calls before each launch


def prepare_rows(rows: list[Measurement], profile: GpuProfile) -> list[PreparedRow]:
    """Capture each row's workload once and compute its analytical phases."""
    prepared = []
    for row in rows:
        workload = model_workload(row.model, batch=row.batch, seq=row.seq, dtype=row.dtype,
                                  phase=row.phase, attention=row.attention)
        clock = row.clock_mhz or profile.boost_clock_mhz
        counts = np.array([op.count for op in workload.ops], dtype=np.int64)
        phases = np.repeat(analytical_phases(workload.ops, profile, clock), counts, axis=0)
        group = np.repeat(np.array([group_of(op) for op in workload.ops]), counts)
        calls = np.repeat(np.array([op.cpu_calls for op in workload.ops], dtype=np.float64), counts)
        modules = np.repeat(np.array([op.module_calls for op in workload.ops], dtype=np.float64),
                            counts)
        prepared.append(PreparedRow(row, workload, clock, phases, group, calls, modules))
    return prepared


@dataclass
class TimeFit:
    """Fitted time corrections per group and eager-dispatch costs."""

    factors: np.ndarray  # (len(GROUPS), 4): l1, l2, l3, l4 in seconds
    launch_s: float
    call_s: float
    module_s: float

    @property
    def corrections(self) -> dict[CorrectionKey, Corrections]:
        """Corrections per op class, and per GEMM-like class on CUDA cores."""
        result: dict[CorrectionKey, Corrections] = {}
        for op_class in OpClass:
            l1, l2, l3, l4 = self.factors[0 if op_class in COMPUTE_CLASSES else 2]
            result[op_class] = Corrections(prologue=l1, main=l2, epilogue=l3, fixed_s=l4)
        for op_class in COMPUTE_CLASSES:
            l1, l2, l3, l4 = self.factors[1]
            result[(op_class, CUDA_CORE)] = Corrections(l1, l2, l3, l4)
        return result

    def intervals(self, row: PreparedRow) -> np.ndarray:
        if not row.workload.eager_launches:
            return np.zeros(len(row.cpu_calls))
        return issue_intervals(row.cpu_calls, row.module_calls, self.launch_s, self.call_s,
                               self.module_s)


def _unpack(parameters: np.ndarray) -> TimeFit:
    values = np.array(parameters, dtype=np.float64)
    for index in _MICROSECOND_PARAMETERS:
        values[index] *= 1e-6
    groups = 4 * len(GROUPS)
    return TimeFit(values[:groups].reshape(len(GROUPS), 4), *map(float, values[groups:]))


def _pass_time(row: PreparedRow, timing: TimeFit) -> float:
    op_times = (row.phases * timing.factors[row.group]).sum(axis=1)
    return gpu_schedule(op_times, timing.intervals(row))[1]


def fit_time(rows: list[PreparedRow]) -> TimeFit:
    """Fit the per-group corrections and the CPU costs of eager launching."""
    measured = np.log([row.measurement.time_s for row in rows])
    groups = 4 * len(GROUPS)
    prior_center = np.array(_START[:groups])

    def residuals(parameters: np.ndarray) -> np.ndarray:
        timing = _unpack(parameters)
        errors = np.log([_pass_time(row, timing) for row in rows]) - measured
        prior = TIME_PRIOR_WEIGHT * (parameters[:groups] - prior_center) / _PRIOR_UNITS
        return np.concatenate([errors, prior])

    result = least_squares(residuals, _START, bounds=(_LOWER, _UPPER), x_scale="jac")
    return _unpack(result.x)


def power_features(row: PreparedRow, profile: GpuProfile, timing: TimeFit) -> tuple[np.ndarray, float, float]:
    """Return (features per power module, idle power, predicted pass time) for one row."""
    table = predict_ops(row.workload.ops, profile, row.clock_mhz, timing.corrections)
    counts = np.array([op.count for op in row.workload.ops], dtype=np.float64)
    curves = dvfs_curves(profile)
    scale = curves.dynamic_scale(row.clock_mhz)
    time_s = np.asarray(table.time_s) * counts
    expanded = np.repeat(np.asarray(table.time_s), counts.astype(np.int64))
    pass_s = gpu_schedule(expanded, timing.intervals(row))[1]
    features = []
    for module in POWER_MODULES:
        activity = np.ones(len(time_s)) if module == "active" else np.asarray(table.activity[module])
        weight = scale if module in CORE_MODULES else 1.0
        features.append(weight * float((activity * time_s).sum()) / pass_s)
    return np.array(features), curves.idle_power_w(row.clock_mhz), pass_s


def fit_power(rows: list[PreparedRow], profile: GpuProfile, timing: TimeFit) -> PowerCoefficients:
    """Fit non-negative module coefficients to the rows' average power, minimizing the
    squared relative error of each row."""
    design, target = [], []
    for row in rows:
        features, idle_w, _ = power_features(row, profile, timing)
        measured_w = row.measurement.power_w
        design.append(features / measured_w)
        target.append((measured_w - idle_w) / measured_w)
    design_matrix = np.array(design)
    # Scale columns so the solver treats modules with small activity fairly.
    norms = np.maximum(np.abs(design_matrix).max(axis=0), 1e-12)
    ceiling = _MAX_HEADROOM_SHARE * max(profile.power_limit_w - profile.idle_power_w, 1.0)
    result = lsq_linear(design_matrix / norms, np.array(target), bounds=(0.0, ceiling * norms))
    return PowerCoefficients(dict(zip(POWER_MODULES, (result.x / norms).tolist())))


def fit_calibration(rows: list[Measurement], profile: GpuProfile, source: str = "",
                    prepared: list[PreparedRow] | None = None) -> Calibration:
    """Fit a calibration for `profile` from measured rows of that GPU; `prepared` reuses
    the rows' captured workloads."""
    if len(rows) < 4:
        raise InputError(f"At least 4 measured rows are needed to fit {profile.id}; got {len(rows)}.")
    if prepared is None:
        prepared = prepare_rows(rows, profile)
    return _fit_prepared(prepared, profile, source)


def _fit_prepared(prepared: list[PreparedRow], profile: GpuProfile, source: str) -> Calibration:
    timing = fit_time(prepared)
    power = fit_power(prepared, profile, timing)
    models = sorted({row.measurement.model for row in prepared})
    clocks = sorted({row.clock_mhz for row in prepared})
    return Calibration(
        gpu=profile.id,
        power=power,
        corrections=timing.corrections,
        dispatch_s=timing.launch_s,
        call_s=timing.call_s,
        module_s=timing.module_s,
        kind="calibrated",
        source=source,
        identity={"name": profile.name, "memory_gb": profile.memory_gb,
                  "power_limit_w": profile.power_limit_w, "driver": None, "cuda": None},
        conditions={"clocks_mhz": clocks},
        fitted_on={"file": source, "rows": len(prepared), "models": models},
    )


def leave_one_model_out(prepared: list[PreparedRow], profile: GpuProfile,
                        on_model: Callable[[], None] | None = None,
                        ) -> list[tuple[Measurement, float, float]]:
    """Fit without each model in turn and predict that model's rows.

    Returns (measurement, predicted time s, predicted energy J) per row. `on_model` is
    called after each held-out model.
    """
    from energaizer.power.simulate import simulate_workload

    predictions = []
    for model in sorted({row.measurement.model for row in prepared}):
        training = [row for row in prepared if row.measurement.model != model]
        held_out = [row for row in prepared if row.measurement.model == model]
        calibration = _fit_prepared(training, profile, "cross-validation")
        for row in held_out:
            run = simulate_workload(row.workload, profile, calibration, row.clock_mhz)
            predictions.append((row.measurement, run.duration_s, run.energy_j))
        logger.info("held out %s: %d rows", model, len(held_out))
        if on_model is not None:
            on_model()
    return predictions
