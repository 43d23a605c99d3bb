"""The first power model: plausible, not fitted, and labelled uncalibrated everywhere.

Each activity draws the profile's idle power plus a share of the headroom up to the
power limit. The share depends on the op class; for GEMM-like ops with recorded shapes
it moves between a memory-bound and a compute-bound level with the arithmetic intensity
against the GPU's ridge point; and it shrinks when the launch grid fills only part of
the SMs. The shares are engineering assumptions, not measurements: a calibrated model
replaces them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from energaizer.analyze.opclass import OpClass
from energaizer.hardware.profiles import GpuProfile
from energaizer.workload.shapes import op_cost

POWER_MODEL_NAME = "uncalibrated"

# Share of (power limit - idle power) drawn by an activity that fills the GPU.
CLASS_HEADROOM_SHARE = {
    OpClass.GEMM: 0.75,
    OpClass.CONVOLUTION: 0.75,
    OpClass.ATTENTION: 0.75,
    OpClass.ELEMENTWISE: 0.50,
    OpClass.REDUCTION: 0.50,
    OpClass.NORMALIZATION: 0.50,
    OpClass.SOFTMAX: 0.50,
    OpClass.EMBEDDING: 0.45,
    OpClass.MEMCPY: 0.30,
    OpClass.MEMSET: 0.30,
    OpClass.COMMUNICATION: 0.35,
    OpClass.OTHER: 0.45,
}
COMPUTE_BOUND_SHARE = 0.85
MEMORY_BOUND_SHARE = 0.55
HOST_COPY_SHARE = 0.15  # copies over PCIe keep the SMs idle
# An activity that occupies a fraction f of the SMs draws (floor + (1 - floor) x f) of
# its class share: memory and clocks stay busy even when few SMs work.
PARTIAL_GRID_FLOOR = 0.3
# Relative spread of the dynamic energy used for the uncertainty band.
DYNAMIC_UNCERTAINTY = 0.35
IDLE_UNCERTAINTY = 0.15

_COMPUTE_CLASSES = {OpClass.GEMM.value, OpClass.CONVOLUTION.value, OpClass.ATTENTION.value}


@dataclass
class DynamicPower:
    """Per-activity dynamic power and how many activities were priced from shapes."""

    dynamic_w: np.ndarray
    from_shapes: int


def dynamic_power_w(activity: pd.DataFrame, profile: GpuProfile) -> DynamicPower:
    """Return the dynamic power (above idle) of each activity row, in watts."""
    headroom_w = max(profile.power_limit_w - profile.idle_power_w, 0.0)
    share = np.array([CLASS_HEADROOM_SHARE[OpClass(c)] for c in activity["op_class"]])
    share, from_shapes = _intensity_adjusted(activity, profile, share)
    host_copy = (activity["category"] == "memcpy") & activity["name"].str.contains(
        r"HtoD|DtoH|Pinned|Pageable", regex=True
    )
    share = np.where(host_copy.to_numpy(), HOST_COPY_SHARE, share)
    return DynamicPower(headroom_w * share * _grid_fill(activity, profile), from_shapes)


def _intensity_adjusted(
    activity: pd.DataFrame, profile: GpuProfile, share: np.ndarray
) -> tuple[np.ndarray, int]:
    """Move the share of compute-class ops with known shapes between the memory-bound
    and compute-bound levels by intensity over the ridge point."""
    adjusted = share.copy()
    priced = 0
    cache: dict[tuple[str, str, str], float | None] = {}
    columns = zip(activity["op_class"], activity["shape_op"], activity["input_dims"],
                  activity["input_types"])
    for row, (op_class, op_name, dims, types) in enumerate(columns):
        if op_class not in _COMPUTE_CLASSES or not dims:
            continue
        key = (op_name, dims, types)
        if key not in cache:
            cache[key] = _ridge_ratio(op_name, dims, types, profile)
        ratio = cache[key]
        if ratio is None:
            continue
        adjusted[row] = MEMORY_BOUND_SHARE + (COMPUTE_BOUND_SHARE - MEMORY_BOUND_SHARE) * ratio
        priced += 1
    return adjusted, priced


def _ridge_ratio(op_name: str, dims: str, types: str, profile: GpuProfile) -> float | None:
    cost = op_cost(op_name, dims, types)
    if cost is None or cost.bytes <= 0:
        return None
    ridge = profile.peak_flops(cost.dtype) / profile.memory_bandwidth_b_s
    return min(cost.intensity / ridge, 1.0)


def _grid_fill(activity: pd.DataFrame, profile: GpuProfile) -> np.ndarray:
    blocks = (activity["grid_x"] * activity["grid_y"] * activity["grid_z"]).to_numpy(np.float64)
    fill = np.where(blocks > 0, np.minimum(blocks / profile.sms, 1.0), 1.0)
    return PARTIAL_GRID_FLOOR + (1.0 - PARTIAL_GRID_FLOOR) * fill
