"""When each op runs on the GPU when eager PyTorch launches ops one by one from the CPU.

The CPU issues op i once it has spent its issue interval on it: the torch calls and
nn.Module calls Python makes since the previous launch, plus the launch call itself. The GPU runs ops in order, each starting when both the previous op
has finished and the op has been issued. An op shorter than the dispatch interval leaves the
GPU idle until the next launch, which is why small models at small batches draw little
more than idle power.
"""

from __future__ import annotations

import numpy as np


def issue_intervals(cpu_calls: np.ndarray, module_calls: np.ndarray, launch_s: float,
                    call_s: float, module_s: float) -> np.ndarray:
    """CPU time spent before each launch: `call_s` per torch call, `module_s` per
    nn.Module call, plus `launch_s`."""
    return (launch_s + call_s * np.asarray(cpu_calls, dtype=np.float64)
            + module_s * np.asarray(module_calls, dtype=np.float64))


def gpu_schedule(op_time_s: np.ndarray, interval_s: np.ndarray | float) -> tuple[np.ndarray, float]:
    """Return each op's start time and the pass time, both in seconds.

    `interval_s` is the CPU time before each launch (one value for all, or one per op).
    With S the running sum of op times, op i ends at S_i + max over j <= i of
    (issue_j - S_{j-1}); the running maximum makes this one vectorized pass.
    """
    times = np.asarray(op_time_s, dtype=np.float64)
    if not len(times):
        return np.zeros(0), 0.0
    intervals = np.broadcast_to(np.maximum(np.asarray(interval_s, dtype=np.float64), 0.0),
                                times.shape)
    issue = np.concatenate([[0.0], np.cumsum(intervals[1:])])
    before = np.concatenate([[0.0], np.cumsum(times)[:-1]])
    slack = np.maximum.accumulate(np.maximum(issue - before, 0.0))
    starts = before + slack
    return starts, float(starts[-1] + times[-1])
