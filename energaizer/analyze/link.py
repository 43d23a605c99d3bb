"""Link each GPU activity to the runtime call that launched it and to its CPU operator.

The kernel and its launch share a correlation id, whatever the launch call is named
(`cudaLaunchKernel`, `cuLaunchKernelEx`, `cudaGraphLaunch`, a memcpy call); one graph
launch can own many kernels. The operator is the innermost CPU op around the launch on
the launching thread, or the op with the launch's external id when the launch has no
op around it on its own thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from energaizer.analyze.nesting import NO_PARENT, Nesting
from energaizer.trace.model import MISSING_ID

NOT_LINKED = -1


@dataclass
class Links:
    """Per GPU activity: indices into runtime and cpu_ops, NOT_LINKED when unknown."""

    runtime_index: np.ndarray
    op_index: np.ndarray  # innermost CPU op around the launch
    shape_op_index: np.ndarray  # nearest op at or above it that recorded input shapes
    top_op_index: np.ndarray  # outermost operator (not annotation) above it

    @property
    def launch_share(self) -> float:
        """Share of GPU activities linked to their launch call."""
        return float((self.runtime_index != NOT_LINKED).mean()) if len(self.runtime_index) else 0.0

    @property
    def op_share(self) -> float:
        """Share of GPU activities linked to a CPU operator."""
        return float((self.op_index != NOT_LINKED).mean()) if len(self.op_index) else 0.0


def link_activity(
    gpu_activity: pd.DataFrame, runtime: pd.DataFrame, cpu_ops: pd.DataFrame, nesting: Nesting
) -> Links:
    """Link GPU activity to launches by correlation id and launches to CPU ops."""
    runtime_index = _launch_indices(gpu_activity, runtime)
    launch_op = _launch_ops(runtime, cpu_ops, nesting)
    op_index = np.where(runtime_index >= 0, launch_op[np.maximum(runtime_index, 0)], NOT_LINKED)
    op_index = _fill_from_kernel_external_ids(op_index, gpu_activity, cpu_ops)
    shape_op, top_op = _ancestor_ops(op_index, cpu_ops, nesting.parent)
    return Links(runtime_index, op_index, shape_op, top_op)


def _launch_indices(gpu_activity: pd.DataFrame, runtime: pd.DataFrame) -> np.ndarray:
    if gpu_activity.empty or runtime.empty:
        return np.full(len(gpu_activity), NOT_LINKED, dtype=np.int64)
    by_correlation = pd.Series(np.arange(len(runtime)), index=runtime["correlation"].to_numpy())
    by_correlation = by_correlation[~by_correlation.index.duplicated(keep="first")]
    by_correlation = by_correlation[by_correlation.index != MISSING_ID]
    found = pd.Series(gpu_activity["correlation"].to_numpy()).map(by_correlation)
    return found.fillna(NOT_LINKED).to_numpy(dtype=np.int64)


def _external_id_map(cpu_ops: pd.DataFrame) -> pd.Series:
    """Map external id to the shortest CPU op carrying it (the innermost, when several
    ops share one id)."""
    keyed = cpu_ops.assign(position=np.arange(len(cpu_ops)))
    keyed = keyed[keyed["external_id"] != MISSING_ID].sort_values("dur_us", kind="stable")
    keyed = keyed.drop_duplicates("external_id", keep="first")
    return pd.Series(keyed["position"].to_numpy(), index=keyed["external_id"].to_numpy())


def _launch_ops(runtime: pd.DataFrame, cpu_ops: pd.DataFrame, nesting: Nesting) -> np.ndarray:
    launch_op = nesting.launch_parent.copy()
    missing = launch_op == NO_PARENT
    if missing.any() and len(cpu_ops):
        mapped = pd.Series(runtime["external_id"].to_numpy()[missing]).map(_external_id_map(cpu_ops))
        launch_op[missing] = mapped.fillna(NOT_LINKED).to_numpy(dtype=np.int64)
    if not len(launch_op):
        return np.full(1, NOT_LINKED, dtype=np.int64)
    return launch_op


def _fill_from_kernel_external_ids(
    op_index: np.ndarray, gpu_activity: pd.DataFrame, cpu_ops: pd.DataFrame
) -> np.ndarray:
    """Link activity whose launch is missing through the external id on the kernel."""
    missing = op_index == NOT_LINKED
    if not missing.any() or cpu_ops.empty:
        return op_index
    ids = gpu_activity["external_id"].to_numpy()[missing]
    mapped = pd.Series(ids).map(_external_id_map(cpu_ops)).fillna(NOT_LINKED)
    filled = op_index.copy()
    filled[missing] = mapped.to_numpy(dtype=np.int64)
    return filled


def _ancestor_ops(
    op_index: np.ndarray, cpu_ops: pd.DataFrame, parent: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return, per activity, the nearest op that recorded shapes and the outermost
    operator, walking up the nesting from the linked op."""
    has_shapes = [bool(dims) and any(bool(d) for d in dims if isinstance(d, list))
                  for dims in cpu_ops["input_dims"]] if len(cpu_ops) else []
    is_operator = (cpu_ops["category"] == "cpu_op").to_numpy() if len(cpu_ops) else []
    names = cpu_ops["name"].tolist() if len(cpu_ops) else []
    cache: dict[int, tuple[int, int]] = {}

    def resolve(start: int) -> tuple[int, int]:
        if start in cache:
            return cache[start]
        shape_op, top_op, current = NOT_LINKED, NOT_LINKED, start
        while current != NO_PARENT:
            if shape_op == NOT_LINKED and has_shapes[current]:
                shape_op = current
            if is_operator[current] and not names[current].startswith("ProfilerStep#"):
                top_op = current
            current = int(parent[current])
        cache[start] = (shape_op, top_op)
        return shape_op, top_op

    shape_ops = np.full(len(op_index), NOT_LINKED, dtype=np.int64)
    top_ops = np.full(len(op_index), NOT_LINKED, dtype=np.int64)
    for position, start in enumerate(op_index.tolist()):
        if start != NOT_LINKED:
            shape_ops[position], top_ops[position] = resolve(start)
    return shape_ops, top_ops
