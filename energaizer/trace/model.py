"""The typed tables a trace is read into.

Times stay in the file's unit, microseconds, in columns named `*_us`. Correlation and
external ids are exact integers: int64 columns when every id fits, Python ints otherwise.
A missing id is -1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from energaizer.trace.decode import ReadReport

MISSING_ID = -1


@dataclass
class Trace:
    """One profiler trace file: GPU activity, launch calls, CPU ops and metadata.

    `gpu_activity` has one row per kernel, memcpy and memset with columns category,
    name, ts_us, dur_us, device, stream, correlation, external_id, grid_x/y/z,
    block_x/y/z, registers_per_thread, shared_memory_bytes, bytes. `runtime` has the
    launch and other CUDA runtime and driver calls (name, ts_us, dur_us, pid, tid,
    correlation, external_id). `cpu_ops` has operators and annotations (name, ts_us,
    dur_us, pid, tid, external_id, category, input_dims, input_types, on_gpu).
    """

    path: str
    gpu_activity: pd.DataFrame
    runtime: pd.DataFrame
    cpu_ops: pd.DataFrame
    metadata: dict[str, Any]
    report: ReadReport
    form: str = "object"
    set_aside_activity: int = 0
    unusable_events: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def device_properties(self) -> list[dict[str, Any]]:
        """The `deviceProperties` entries, one per GPU the process saw."""
        value = self.metadata.get("deviceProperties")
        if not isinstance(value, list):
            return []
        return [entry for entry in value if isinstance(entry, dict)]

    @property
    def distributed_info(self) -> dict[str, Any] | None:
        """The `distributedInfo` block of a distributed job, if recorded."""
        value = self.metadata.get("distributedInfo")
        return value if isinstance(value, dict) else None

    @property
    def rank(self) -> int | None:
        """This trace's rank in a distributed job, if recorded."""
        info = self.distributed_info
        if info is None:
            return None
        rank = info.get("rank")
        return rank if isinstance(rank, int) and not isinstance(rank, bool) else None

    @property
    def kernels(self) -> pd.DataFrame:
        """GPU activity rows that are kernels (no memcpy or memset)."""
        return self.gpu_activity[self.gpu_activity["category"] == "kernel"]

    def device_properties_for(self, device: int) -> dict[str, Any] | None:
        """Return the deviceProperties entry of GPU `device`, if recorded."""
        for entry in self.device_properties:
            if entry.get("id") == device:
                return entry
        return None
