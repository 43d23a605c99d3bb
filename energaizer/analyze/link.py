"""Link each GPU activity to the runtime call that launched it and to its CPU operator.

The kernel and its launch share a correlation id, whatever the launch call is named
(`cudaLaunchKernel`, `cuLaunchKernelEx`, `cudaGraphLaunch`, a memcpy call); one graph
launch can own many kernels. The operator is the innermost CPU op around the launch on
the launching thread, or the op with the launch's external id when the launch has no
op around it on its own thread.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
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
    by_external_id = functools.cache(lambda: _external_id_map(cpu_ops))
    runtime_index = _launch_indices(gpu_activity, runtime)
    launch_op = _launch_ops(runtime, cpu_ops, nesting, by_external_id)
    op_index = np.where(runtime_index >= 0, launch_op[np.maximum(runtime_index, 0)], NOT_LINKED)
    op_index = _fill_from_kernel_external_ids(op_index, gpu_activity, cpu_ops, by_external_id)
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
    # Only the columns used, so sorting does not move the op names.
    keyed = pd.DataFrame({
        "external_id": cpu_ops["external_id"].to_numpy(),
        "dur_us": cpu_ops["dur_us"].to_numpy(),
        "position": np.arange(len(cpu_ops)),
    })
    keyed = keyed[keyed["external_id"] != MISSING_ID].sort_values("dur_us", kind="stable")
    keyed = keyed.drop_duplicates("external_id", keep="first")
    return pd.Series(keyed["position"].to_numpy(), index=keyed["external_id"].to_numpy())


def _launch_ops(runtime: pd.DataFrame, cpu_ops: pd.DataFrame, nesting: Nesting,
                by_external_id: Callable[[], pd.Series]) -> np.ndarray:
    launch_op = nesting.launch_parent.copy()
    missing = launch_op == NO_PARENT
    if missing.any() and len(cpu_ops):
        mapped = pd.Series(runtime["external_id"].to_numpy()[missing]).map(by_external_id())
        launch_op[missing] = mapped.fillna(NOT_LINKED).to_numpy(dtype=np.int64)
    if not len(launch_op):
        return np.full(1, NOT_LINKED, dtype=np.int64)
    return launch_op


def _fill_from_kernel_external_ids(
    op_index: np.ndarray, gpu_activity: pd.DataFrame, cpu_ops: pd.DataFrame,
    by_external_id: Callable[[], pd.Series],
) -> np.ndarray:
    """Link activity whose launch is missing through the external id on the kernel."""
    missing = op_index == NOT_LINKED
    if not missing.any() or cpu_ops.empty:
        return op_index
    ids = gpu_activity["external_id"].to_numpy()[missing]
    mapped = pd.Series(ids).map(by_external_id()).fillna(NOT_LINKED)
    filled = op_index.copy()
    filled[missing] = mapped.to_numpy(dtype=np.int64)
    return filled


def _ancestor_ops(
    op_index: np.ndarray, cpu_ops: pd.DataFrame, parent: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return, per activity, the nearest op that recorded shapes and the outermost
    operator, walking up the nesting from the linked op."""
    if not len(cpu_ops):
        unlinked = np.full(len(op_index), NOT_LINKED, dtype=np.int64)
        return unlinked, unlinked.copy()
    positions = np.arange(len(cpu_ops))
    is_step = cpu_ops["name"].str.startswith("ProfilerStep#").to_numpy(dtype=bool)
    is_top = (cpu_ops["category"] == "cpu_op").to_numpy(dtype=bool) & ~is_step
    shape_op = _nearest_marked(np.where(_recorded_shapes(cpu_ops["input_dims"]), positions,
                                        _NONE_YET), parent)
    top_op = _outermost_marked(np.where(is_top, positions, _NONE_YET), parent)
    linked = op_index != NOT_LINKED
    at = np.maximum(op_index, 0)
    return (np.where(linked, shape_op[at], NOT_LINKED),
            np.where(linked, top_op[at], NOT_LINKED))


# A marked op not found yet in a chain segment. It becomes NOT_LINKED past the root.
_NONE_YET = -2


def _recorded_shapes(input_dims: pd.Series) -> np.ndarray:
    """True for each op whose input dims contain at least one non-empty shape list.

    Ops share one list per distinct shape, so each distinct object is checked once.
    """
    values = input_dims.to_numpy(dtype=object)
    codes, _ = pd.factorize(np.fromiter(map(id, values), dtype=np.int64, count=len(values)))
    _, first = np.unique(codes, return_index=True)
    recorded = np.array(
        [bool(dims) and any(bool(d) for d in dims if isinstance(d, list))
         for dims in values[first]],
        dtype=bool,
    )
    return recorded[codes] if len(values) else np.zeros(0, dtype=bool)


def _nearest_marked(marked: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Return, for each op, the nearest op at or above it whose `marked` entry is its
    own position (others are _NONE_YET), else NOT_LINKED.

    Pointer jumping: `found[n]` is the nearest mark in the chain from n up to, but not
    including, `jump[n]`, and each round doubles the length of that chain.
    """
    found = marked.copy()
    jump = parent.copy()
    while True:
        open_chain = (found == _NONE_YET) & (jump != NO_PARENT)
        if not open_chain.any():
            break
        ahead = jump[open_chain]
        found[open_chain] = found[ahead]
        jump[open_chain] = jump[ahead]
    found[found == _NONE_YET] = NOT_LINKED
    return found


def _outermost_marked(marked: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Return, for each op, the outermost op at or above it whose `marked` entry is its
    own position, else NOT_LINKED. It jumps pointers as `_nearest_marked` does."""
    found = marked.copy()
    jump = parent.copy()
    while True:
        open_chain = jump != NO_PARENT
        if not open_chain.any():
            break
        ahead = jump[open_chain]
        outer = found[ahead]
        found[open_chain] = np.where(outer != _NONE_YET, outer, found[open_chain])
        jump[open_chain] = jump[ahead]
    found[found == _NONE_YET] = NOT_LINKED
    return found
