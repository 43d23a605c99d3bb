"""The workload: the ops one pass of a model (or one op-list file) runs, in launch order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from energaizer.workload.ops import Op, total


@dataclass
class Workload:
    """Ops in launch order, with where they came from.

    `eager_launches` is True when every op is launched from Python one by one (eager
    PyTorch), so a GPU op that is shorter than the CPU's dispatch time leaves the GPU idle
    until the next launch; False for CUDA graphs and compiled programs.
    """

    name: str
    ops: list[Op]
    source: dict[str, Any] = field(default_factory=dict)
    eager_launches: bool = True

    @property
    def flops(self) -> float:
        return total(self.ops, "flops")

    @property
    def bytes(self) -> float:
        return total(self.ops, "bytes")

    @property
    def launches(self) -> int:
        return sum(op.count for op in self.ops)

    def distinct_ops(self) -> tuple[list[Op], np.ndarray]:
        """Return the ops that differ for the performance model, and for each op of
        `ops` the index of its distinct op. Computed once per workload."""
        cached = self.__dict__.get("_distinct")
        if cached is not None and cached[2] == len(self.ops):
            return cached[0], cached[1]
        from energaizer.perf.predict import op_key

        index: dict[tuple, int] = {}
        distinct: list[Op] = []
        inverse = np.empty(len(self.ops), dtype=np.int64)
        for position, op in enumerate(self.ops):
            key = op_key(op)
            found = index.get(key)
            if found is None:
                found = index[key] = len(distinct)
                distinct.append(op)
            inverse[position] = found
        self.__dict__["_distinct"] = (distinct, inverse, len(self.ops))
        return distinct, inverse
