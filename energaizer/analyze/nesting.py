"""Nest CPU operators by time on each thread, and find the operator around each launch.

Profilers round timestamps, so a child can end a hair after its parent. Children that
overrun their parent are clipped to it; overruns beyond `NESTING_TOLERANCE_US` are real
violations and are counted. Self time is never negative.
"""

from __future__ import annotations

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
    parent = np.full(op_count, NO_PARENT, dtype=np.int64)
    child_time = np.zeros(op_count)
    clipped_end = (cpu_ops["ts_us"] + cpu_ops["dur_us"]).to_numpy(dtype=np.float64, copy=True)
    launch_parent = np.full(len(runtime), NO_PARENT, dtype=np.int64)
    violations = 0
    max_overrun = 0.0

    for stream_items in _items_by_thread(cpu_ops, runtime):
        stack: list[int] = []
        for kind, index, start in stream_items:
            while stack and start >= clipped_end[stack[-1]]:
                stack.pop()
            if kind == 1:
                launch_parent[index] = stack[-1] if stack else NO_PARENT
                continue
            if stack:
                top = stack[-1]
                overrun = clipped_end[index] - clipped_end[top]
                if overrun > 0:
                    clipped_end[index] = clipped_end[top]
                    max_overrun = max(max_overrun, overrun)
                    violations += overrun > NESTING_TOLERANCE_US
                parent[index] = top
                child_time[top] += clipped_end[index] - start
            stack.append(index)

    starts = cpu_ops["ts_us"].to_numpy(dtype=np.float64)
    self_time = np.maximum(clipped_end - starts - child_time, 0.0)
    return Nesting(parent, self_time, int(violations), float(max_overrun), launch_parent)


def _items_by_thread(cpu_ops: pd.DataFrame, runtime: pd.DataFrame):
    """Yield, per thread, ops and runtime calls ordered by start; at equal starts the
    longer op comes first and runtime calls come after ops."""
    frames = []
    if len(cpu_ops):
        frames.append(pd.DataFrame({
            "thread": _thread_keys(cpu_ops), "start": cpu_ops["ts_us"].to_numpy(),
            "kind": 0, "index": np.arange(len(cpu_ops)), "neg_dur": -cpu_ops["dur_us"].to_numpy(),
        }))
    if len(runtime):
        frames.append(pd.DataFrame({
            "thread": _thread_keys(runtime), "start": runtime["ts_us"].to_numpy(),
            "kind": 1, "index": np.arange(len(runtime)), "neg_dur": 0.0,
        }))
    if not frames:
        return
    items = pd.concat(frames, ignore_index=True)
    items = items.sort_values(["thread", "start", "kind", "neg_dur"], kind="stable")
    for _, group in items.groupby("thread", sort=False):
        yield zip(group["kind"].tolist(), group["index"].tolist(), group["start"].tolist())


def _thread_keys(frame: pd.DataFrame) -> np.ndarray:
    return (frame["pid"].astype(str) + "/" + frame["tid"].astype(str)).to_numpy()
