"""The workload: the ops one pass of a model (or one op-list file) runs, in launch order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
