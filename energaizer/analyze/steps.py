"""Split GPU activity into training or inference steps.

Profiler steps (`ProfilerStep#N`) are used when recorded: their GPU-side annotation when
the trace has one, else the GPU work launched while each CPU-side step was open. A trace
without step markers is searched for a repeating period in its kernel name sequence; the
steps found that way are reported as inferred.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

_STEP_NAME = re.compile(r"^ProfilerStep#(\d+)$")
# A candidate period is accepted when this share of kernels repeats one period later.
_MIN_REPEAT_MATCH = 0.9
_MAX_ANCHOR_NAMES = 8


@dataclass
class StepWindow:
    """One step's window on the GPU timeline, in trace microseconds."""

    step: str
    start_us: float
    end_us: float
    inferred: bool = False


@dataclass
class StepSplit:
    """The steps of one GPU's activity and how they were found."""

    windows: list[StepWindow]
    method: str  # "gpu annotation", "profiler step", "repetition" or "none"
    period_kernels: int | None = None

    def step_of(self, starts_us: np.ndarray) -> np.ndarray:
        """Return the index of the window containing each start time, -1 outside all."""
        if not self.windows:
            return np.full(len(starts_us), -1, dtype=np.int64)
        lows = np.array([w.start_us for w in self.windows])
        highs = np.array([w.end_us for w in self.windows])
        index = np.searchsorted(lows, starts_us, side="right") - 1
        inside = (index >= 0) & (starts_us < highs[np.maximum(index, 0)])
        return np.where(inside, index, -1)


def split_steps(
    activity: pd.DataFrame, cpu_ops: pd.DataFrame, launch_ts_us: np.ndarray, device: int
) -> StepSplit:
    """Find the steps of one GPU's activity (sorted by start).

    `launch_ts_us` gives, per activity row, the start of its launch call (NaN when the
    launch is not in the trace).
    """
    marked = cpu_ops[cpu_ops["name"].str.match(_STEP_NAME.pattern)] if len(cpu_ops) else cpu_ops
    on_gpu = marked[marked["on_gpu"] & (marked["pid"] == device)] if len(marked) else marked
    if len(on_gpu):
        return _from_gpu_annotations(on_gpu)
    on_cpu = marked[~marked["on_gpu"]] if len(marked) else marked
    if len(on_cpu):
        return _from_cpu_steps(on_cpu, activity, launch_ts_us)
    return infer_repetition(activity)


def _from_gpu_annotations(annotations: pd.DataFrame) -> StepSplit:
    rows = annotations.drop_duplicates("name").sort_values("ts_us")
    windows = [
        StepWindow(name, start, start + duration)
        for name, start, duration in zip(rows["name"], rows["ts_us"], rows["dur_us"])
    ]
    return StepSplit(_without_overlap(windows), "gpu annotation")


def _from_cpu_steps(
    steps: pd.DataFrame, activity: pd.DataFrame, launch_ts_us: np.ndarray
) -> StepSplit:
    steps = steps.drop_duplicates("name").sort_values("ts_us")
    cpu_starts = steps["ts_us"].to_numpy()
    cpu_ends = cpu_starts + steps["dur_us"].to_numpy()
    owner = np.searchsorted(cpu_starts, launch_ts_us, side="right") - 1
    valid = ~np.isnan(launch_ts_us) & (owner >= 0)
    valid &= launch_ts_us < cpu_ends[np.maximum(owner, 0)]
    starts = activity["ts_us"].to_numpy()
    ends = starts + activity["dur_us"].to_numpy()

    windows = []
    for index, name in enumerate(steps["name"]):
        mine = valid & (owner == index)
        start = float(starts[mine].min()) if mine.any() else float(cpu_starts[index])
        end = float(ends[mine].max()) if mine.any() else float(cpu_ends[index])
        windows.append(StepWindow(name, start, end))
    windows.sort(key=lambda window: window.start_us)
    for current, following in zip(windows, windows[1:]):
        current.end_us = following.start_us
    return StepSplit(windows, "profiler step")


def _without_overlap(windows: list[StepWindow]) -> list[StepWindow]:
    for current, following in zip(windows, windows[1:]):
        current.end_us = min(current.end_us, following.start_us)
    return windows


def infer_repetition(activity: pd.DataFrame) -> StepSplit:
    """Find the repeating period of the kernel name sequence and split steps on it.

    Each step starts at the position within the period that most often follows the
    longest idle gap, which is where one iteration hands over to the next.
    """
    kernels = activity[activity["category"] == "kernel"]
    codes = pd.factorize(kernels["name"])[0]
    period = find_period(codes)
    if period is None:
        return StepSplit([], "none")
    starts = kernels["ts_us"].to_numpy()
    ends = starts + kernels["dur_us"].to_numpy()
    gaps = np.empty(len(starts))
    gaps[0] = 0.0
    gaps[1:] = starts[1:] - np.maximum.accumulate(ends)[:-1]
    phase = int(np.argmax([np.median(gaps[offset::period]) for offset in range(period)]))
    block_starts = list(range(phase, len(codes) - period + 1, period))
    windows = []
    for number, first in enumerate(block_starts):
        last = first + period - 1
        end = starts[first + period] if first + period < len(starts) else ends[: last + 1].max()
        windows.append(StepWindow(f"inferred#{number}", float(starts[first]), float(end), True))
    return StepSplit(windows, "repetition", period)


def find_period(codes: np.ndarray) -> int | None:
    """Return the shortest period (in kernels) that the sequence repeats with, or None.

    Candidate periods are the distances between occurrences of the rarest repeated
    names. Each candidate is scored from the first occurrence of its name onwards, so
    warm-up kernels before the first iteration do not hide the period: the share of
    codes that equal the code one period later must reach `_MIN_REPEAT_MATCH`.
    """
    count = len(codes)
    if count < 4:
        return None
    values, counts = np.unique(codes, return_counts=True)
    repeated = (counts >= 2) & (counts <= count // 2)
    if not repeated.any():
        return None
    order = np.argsort(counts[repeated], kind="stable")[:_MAX_ANCHOR_NAMES]
    candidates: dict[int, int] = {}
    for code in values[repeated][order]:
        positions = np.flatnonzero(codes == code)
        for distance in np.unique(np.diff(positions)):
            period = int(distance)
            if period <= (count - positions[0]) // 2:
                candidates[period] = min(candidates.get(period, count), int(positions[0]))
    for period in sorted(candidates):
        tail = codes[candidates[period]:]
        if np.mean(tail[:-period] == tail[period:]) >= _MIN_REPEAT_MATCH:
            return period
    return None
