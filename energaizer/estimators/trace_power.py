"""Power and retargeted time of each traced GPU activity.

An activity whose CPU op recorded shapes becomes a workload Op; the performance model
gives the seconds each GPU module needs for that work, and dividing by the measured
duration gives the module's activity. Activities without shapes get a typical activity
for their op class. Power follows the calibrated coefficients at the clock's voltage.
Retargeting to another GPU or clock scales each activity's duration by the model's
predicted time on the target over its predicted time on the recorded GPU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from energaizer.analyze.opclass import OpClass
from energaizer.calibrate.profile import Calibration
from energaizer.hardware.profiles import GpuProfile
from energaizer.perf import MODULES, predict_op
from energaizer.power.coefficients import CORE_MODULES
from energaizer.power.dvfs import dvfs_curves
from energaizer.workload.from_trace import trace_op

# Typical module activity of a kernel of each class that fills the GPU, used when the
# trace recorded no shapes. Estimates from the performance model on mid-sized shapes.
_COMPUTE_TENSOR = {"dram": 0.25, "l2": 0.40, "smem": 0.45, "tensor": 0.55, "fp32": 0.05, "sfu": 0.0}
_COMPUTE_SIMT = {"dram": 0.25, "l2": 0.40, "smem": 0.45, "tensor": 0.0, "fp32": 0.60, "sfu": 0.0}
_STREAMING = {"dram": 0.70, "l2": 0.45, "smem": 0.05, "tensor": 0.0, "fp32": 0.10, "sfu": 0.02}
TYPICAL_ACTIVITY = {
    OpClass.GEMM: _COMPUTE_TENSOR,
    OpClass.CONVOLUTION: _COMPUTE_TENSOR,
    OpClass.ATTENTION: {**_COMPUTE_TENSOR, "sfu": 0.15},
    OpClass.ELEMENTWISE: _STREAMING,
    OpClass.REDUCTION: _STREAMING,
    OpClass.NORMALIZATION: {**_STREAMING, "sfu": 0.05},
    OpClass.SOFTMAX: {**_STREAMING, "sfu": 0.10},
    OpClass.EMBEDDING: {**_STREAMING, "dram": 0.55},
    OpClass.MEMCPY: {"dram": 0.60, "l2": 0.30, "smem": 0.0, "tensor": 0.0, "fp32": 0.0, "sfu": 0.0},
    OpClass.MEMSET: {"dram": 0.60, "l2": 0.30, "smem": 0.0, "tensor": 0.0, "fp32": 0.0, "sfu": 0.0},
    OpClass.COMMUNICATION: {"dram": 0.20, "l2": 0.10, "smem": 0.0, "tensor": 0.0, "fp32": 0.02, "sfu": 0.0},
    OpClass.OTHER: {"dram": 0.40, "l2": 0.30, "smem": 0.10, "tensor": 0.0, "fp32": 0.20, "sfu": 0.02},
}
# Kernel names of CUDA-core (not tensor-core) GEMMs and convolutions.
_SIMT_NAME = re.compile(r"sgemm|scudnn|_s\d*gemm_fp32|gemv|gemmk1|implicit_convolve_sgemm", re.I)
# Time ratios per class for activities without shapes: which rate bounds the class.
_COMPUTE_CLASSES = {OpClass.GEMM, OpClass.CONVOLUTION, OpClass.ATTENTION}


@dataclass
class PricedActivity:
    """Per activity row: power while it runs and its duration on the target GPU."""

    power_w: np.ndarray
    target_dur_us: np.ndarray
    idle_power_w: float
    from_shapes: int


def price_activity(activity: pd.DataFrame, recorded: GpuProfile, target: GpuProfile,
                   calibration: Calibration, clock_mhz: float,
                   recorded_clock_mhz: float) -> PricedActivity:
    """Return each activity's power on `target` at `clock_mhz` and its retargeted time."""
    retarget = target.id != recorded.id or abs(clock_mhz - recorded_clock_mhz) > 0.5
    measured_s = activity["dur_us"].to_numpy(np.float64) * 1e-6
    busy = np.zeros((len(activity), len(MODULES)))
    ratio = np.ones(len(activity))
    priced = np.zeros(len(activity), dtype=bool)
    for signature, rows in activity.groupby("signature", sort=False).indices.items():
        first = activity.iloc[rows[0]]
        op = trace_op(first["op_class"], first["shape_op"], first["input_dims"],
                      first["input_types"], first["category"], int(first["bytes"]), first["name"])
        if op is None:
            ratio[rows] = _class_ratio(OpClass(first["op_class"]), first["name"], recorded,
                                       target, recorded_clock_mhz, clock_mhz) if retarget else 1.0
            continue
        on_target = predict_op(op, target, clock_mhz, calibration.corrections)
        busy[rows] = [on_target.activity[m] * on_target.time_s for m in MODULES]
        priced[rows] = True
        if retarget:
            on_recorded = predict_op(op, recorded, recorded_clock_mhz, calibration.corrections)
            ratio[rows] = on_target.time_s / on_recorded.time_s if on_recorded.time_s > 0 else 1.0
    target_s = measured_s * ratio
    activities = _activities(activity, busy, priced, target_s, target)
    curves = dvfs_curves(target)
    idle_w = curves.idle_power_w(clock_mhz)
    scale = curves.dynamic_scale(clock_mhz)
    coefficients = calibration.power
    core = coefficients.get("active") * activities["fill"]
    for module in CORE_MODULES[1:]:
        core = core + coefficients.get(module) * activities[module]
    power = idle_w + scale * core + coefficients.get("dram") * activities["dram"]
    return PricedActivity(np.minimum(power, target.power_limit_w), target_s * 1e6, idle_w,
                          int(priced.sum()))


def _activities(activity: pd.DataFrame, busy: np.ndarray, priced: np.ndarray,
                time_s: np.ndarray, target: GpuProfile) -> dict[str, np.ndarray]:
    """Module activity per row: modeled work over time where priced, typical otherwise."""
    blocks = (activity["grid_x"] * activity["grid_y"] * activity["grid_z"]).to_numpy(np.float64)
    fill = np.where(blocks > 0, np.minimum(blocks / target.sms, 1.0), 1.0)
    safe_time = np.where(time_s > 0, time_s, np.inf)
    result = {"fill": np.where(priced, 1.0, fill)}
    typical = _typical_matrix(activity)
    for column, module in enumerate(MODULES):
        modeled = np.minimum(busy[:, column] / safe_time, 1.0)
        result[module] = np.where(priced, modeled, typical[:, column] * fill)
    return result


def _typical_matrix(activity: pd.DataFrame) -> np.ndarray:
    """Return the typical module activity per row, looked up once per distinct
    (op class, name)."""
    class_codes, op_classes = pd.factorize(activity["op_class"])
    name_codes, names = pd.factorize(activity["name"])
    name_count = max(len(names), 1)
    pairs, pair_of_row = np.unique(class_codes.astype(np.int64) * name_count + name_codes,
                                   return_inverse=True)
    table = np.array(
        [_typical_row(op_classes[pair // name_count], names[pair % name_count])
         for pair in pairs.tolist()],
        dtype=np.float64,
    ).reshape(len(pairs), len(MODULES))
    return table[pair_of_row.reshape(-1)]


def _typical_row(op_class: str, name: str) -> list[float]:
    values = TYPICAL_ACTIVITY[OpClass(op_class)]
    if OpClass(op_class) in _COMPUTE_CLASSES and _SIMT_NAME.search(name):
        values = _COMPUTE_SIMT
    return [values[m] for m in MODULES]


def _class_ratio(op_class: OpClass, name: str, recorded: GpuProfile, target: GpuProfile,
                 recorded_clock: float, clock: float) -> float:
    """Time on the target over time on the recorded GPU for an activity without shapes:
    compute classes scale with peak FLOP/s at the clock, the rest with the link or memory
    bandwidth that bounds them."""
    if op_class in _COMPUTE_CLASSES:
        dtype = "fp32" if _SIMT_NAME.search(name) else "bf16"
        tensor = not _SIMT_NAME.search(name)
        source = recorded.peak_flops(dtype, tensor) * recorded_clock / recorded.boost_clock_mhz
        goal = target.peak_flops(dtype, tensor) * clock / target.boost_clock_mhz
        return source / goal
    if op_class == OpClass.COMMUNICATION:
        return _link_b_s(recorded) / _link_b_s(target)
    return recorded.memory_bandwidth_b_s / target.memory_bandwidth_b_s


def _link_b_s(profile: GpuProfile) -> float:
    return (profile.nvlink_gb_s or profile.pcie_gb_s) * 1e9
