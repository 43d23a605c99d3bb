"""Nest CPU operators by time on each thread, and find the operator around each launch.

Profilers round timestamps, so a child can end a hair after its parent. Children that
overrun their parent are clipped to it; overruns beyond `NESTING_TOLERANCE_US` are real
violations and are counted. Self time is never negative.

The nesting is the one that a stack walk builds over each thread's items in start order.
A thread whose ops nest without any overrun (nearly every thread of a real trace) is
nested with array operations that give the same parents. The stack before an item
contains exactly the earlier ops that end after the item starts. Its depth is therefore
a count, and its top is the latest op one level up. A thread with an overrun is walked
item by item.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

NESTING_TOLERANCE_US = 1.0
NO_PARENT = -1


@dataclass
class Nesting:
    """Parent links and self times of the CPU operators of a trace."""

    parent: np.ndarray  # index into cpu_ops of each op's parent, NO_PARENT at the top
    self_time_us: np.ndarray
    violations: int  # children that overran their parent by more than the tolerance
    max_overrun_us: float
    launch_parent: np.ndarray  # index into cpu_ops of the innermost op around each runtime call


def nest_operators(cpu_ops: pd.DataFrame, runtime: pd.DataFrame) -> Nesting:
    """Nest CPU ops per (pid, tid) and place each runtime call inside its innermost op."""
    op_count = len(cpu_ops)
    starts = cpu_ops["ts_us"].to_numpy(dtype=np.float64)
    nesting = Nesting(
        parent=np.full(op_count, NO_PARENT, dtype=np.int64),
        self_time_us=np.zeros(op_count),
        violations=0,
        max_overrun_us=0.0,
        launch_parent=np.full(len(runtime), NO_PARENT, dtype=np.int64),
    )
    clipped_end = (cpu_ops["ts_us"] + cpu_ops["dur_us"]).to_numpy(dtype=np.float64, copy=True)
    child_time = np.zeros(op_count)
    for items, item_starts in _items_by_thread(cpu_ops, runtime):
        if not _nest_thread_by_counting(items, item_starts, clipped_end, child_time, nesting):
            _nest_thread_by_walk(items, item_starts, clipped_end, child_time, nesting)
    nesting.self_time_us = np.maximum(clipped_end - starts - child_time, 0.0)
    return nesting


def _nest_thread_by_counting(items: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                             child_time: np.ndarray, nesting: Nesting) -> bool:
    """Nest one thread's items with array operations. Returns False, having changed
    nothing, when an op overruns its parent, because only the walk clips.

    Only ops of positive duration can hold anything: an op of zero duration is popped
    by the next item, which starts no earlier than it ends. Such an op ends at or before
    a start only if it also starts before it, so among them, those that end after an
    item starts are the earlier ones minus those that ended by its start.
    """
    op_count = len(nesting.parent)
    is_op = items < op_count
    if not is_op.any():
        return True  # runtime calls only, so every launch parent stays NO_PARENT
    op_items = np.where(is_op, items, 0)
    holder = is_op & (ends[op_items] > starts)
    holders_before = np.cumsum(holder) - holder
    ended = np.searchsorted(np.sort(ends[items[holder]]), starts, side="right")
    depth = holders_before - ended

    # The top of the stack before an item is the latest holder one level up.
    positions = np.arange(len(items))
    holder_positions = positions[holder]
    holder_depth = depth[holder]
    holder_keys = holder_depth * len(items) + holder_positions
    # Positions already ascend, so a stable sort by depth sorts the keys. Numpy sorts
    # 16-bit integers stably by radix.
    if holder_depth.max(initial=0) < np.iinfo(np.int16).max:
        holder_depth = holder_depth.astype(np.int16)
    key_order = np.argsort(holder_depth, kind="stable")
    nested = depth > 0
    target_keys = (depth[nested] - 1) * len(items) + positions[nested]
    below = np.searchsorted(holder_keys[key_order], target_keys) - 1
    if (below < 0).any():
        return False
    found = key_order[below]
    if not np.array_equal(depth[holder_positions[found]], depth[nested] - 1):
        return False
    parents = np.full(len(items), NO_PARENT, dtype=np.int64)
    parents[nested] = items[holder_positions[found]]

    child = is_op & nested
    if (ends[items[child]] > ends[parents[child]]).any():
        return False
    nesting.parent[items[is_op]] = parents[is_op]
    nesting.launch_parent[items[~is_op] - op_count] = parents[~is_op]
    # np.add.at adds in the given order, the order in which the walk adds.
    np.add.at(child_time, parents[child], ends[items[child]] - starts[child])
    return True


def _nest_thread_by_walk(items: np.ndarray, starts: np.ndarray, clipped_end: np.ndarray,
                         child_time: np.ndarray, nesting: Nesting) -> None:
    """Nest one thread's items with a stack, clipping ops that overrun their parent."""
    op_count = len(nesting.parent)
    op_items = items[items < op_count].tolist()
    # Dictionaries of Python floats, not arrays: the walk reads and writes one element
    # at a time.
    end_of = dict(zip(op_items, clipped_end[op_items].tolist()))
    child_time_of = dict.fromkeys(op_items, 0.0)
    parent_of: dict[int, int] = {}
    launch_parent_of: dict[int, int] = {}
    stack: list[int] = []
    for item, start in zip(items.tolist(), starts.tolist()):
        while stack and start >= end_of[stack[-1]]:
            stack.pop()
        if item >= op_count:
            launch_parent_of[item - op_count] = stack[-1] if stack else NO_PARENT
            continue
        if stack:
            top = stack[-1]
            overrun = end_of[item] - end_of[top]
            if overrun > 0:
                end_of[item] = end_of[top]
                nesting.max_overrun_us = max(nesting.max_overrun_us, float(overrun))
                nesting.violations += int(overrun > NESTING_TOLERANCE_US)
            parent_of[item] = top
            child_time_of[top] += end_of[item] - start
        stack.append(item)

    clipped_end[op_items] = [end_of[item] for item in op_items]
    child_time[op_items] = [child_time_of[item] for item in op_items]
    nesting.parent[list(parent_of)] = list(parent_of.values())
    nesting.launch_parent[list(launch_parent_of)] = list(launch_parent_of.values())


def _items_by_thread(cpu_ops: pd.DataFrame, runtime: pd.DataFrame):
    """Yield, per thread, the items (op positions, then runtime calls numbered after the
    ops) and their starts, ordered by start. At equal starts the longer op comes first,
    and runtime calls come after ops."""
    op_count = len(cpu_ops)
    total = op_count + len(runtime)
    if not total:
        return
    starts = np.concatenate([cpu_ops["ts_us"].to_numpy(dtype=np.float64),
                             runtime["ts_us"].to_numpy(dtype=np.float64)])
    # At one start: ops by decreasing duration, then runtime calls.
    tie_order = np.concatenate([-cpu_ops["dur_us"].to_numpy(dtype=np.float64),
                                np.full(len(runtime), np.inf)])
    thread_keys = [key for key in (_thread_key(cpu_ops["tid"], runtime["tid"]),
                                   _thread_key(cpu_ops["pid"], runtime["pid"]))
                   if (key != key[0]).any()]
    # np.lexsort is a stable sort by the last key first, so items that tie on every
    # key keep their order.
    order = np.lexsort((tie_order, starts, *thread_keys))
    changes = np.zeros(total - 1, dtype=bool)
    for key in thread_keys:
        sorted_key = key[order]
        changes |= sorted_key[1:] != sorted_key[:-1]
    bounds = [0, *(np.flatnonzero(changes) + 1).tolist(), total]
    sorted_starts = starts[order]
    for first, last in itertools.pairwise(bounds):
        yield order[first:last], sorted_starts[first:last]


def _thread_key(op_values: pd.Series, runtime_values: pd.Series) -> np.ndarray:
    """Return the pids (or tids) of ops followed by runtime calls as one sortable array,
    which contains the integers themselves or codes that number each distinct value."""
    values = pd.concat([op_values, runtime_values], ignore_index=True)
    if pd.api.types.is_integer_dtype(values.dtype):
        return values.to_numpy()
    codes, _ = pd.factorize(values)
    return codes
