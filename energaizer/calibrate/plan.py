"""The microbenchmark plan of device calibration, and scaling it to a time budget.

Each point runs one kernel repeatedly: GEMMs across shapes and dtypes, memory-bound
kernels across sizes (copy, elementwise, reduction, softmax, layer norm), attention, and
an idle point. Every point first warms up for `warmup_s`, then runs the kernel steadily
for `steady_s`. Steady windows stay well over one second, because NVML's plain power
reading is a one-second average and the energy counter steps every few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from energaizer.analyze.opclass import OpClass
from energaizer.errors import InputError
from energaizer.workload import ops
from energaizer.workload.ops import Op

DEFAULT_BUDGET_S = 300.0
WARMUP_S = 0.5
STEADY_S = 2.0
MIN_WARMUP_S = 0.25
MIN_STEADY_S = 1.5
ROW = 4096  # last dimension of softmax and layer norm inputs

_MEMORY_KINDS = {
    # kind: (op class, tensors read, tensors written, FLOPs per element)
    "copy": (OpClass.MEMCPY, 1.0, 1.0, 0.0),
    "elementwise": (OpClass.ELEMENTWISE, 2.0, 1.0, 1.0),
    "reduction": (OpClass.REDUCTION, 1.0, 0.0, 1.0),
    "softmax": (OpClass.SOFTMAX, 1.0, 1.0, 5.0),
    "layernorm": (OpClass.NORMALIZATION, 1.0, 1.0, 8.0),
}


@dataclass(frozen=True)
class PlanPoint:
    """One microbenchmark: `kind` with its shape `params`; `key` is unique in a plan."""

    key: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict, hash=False)

    def op(self) -> Op | None:
        """Build the op this point runs, priced like every other op (None for idle)."""
        p = self.params
        if self.kind == "gemm":
            return ops.gemm(p["m"], p["n"], p["k"], p["dtype"], name=self.key)
        if self.kind == "attention":
            return ops.attention(p["batch"], p["heads"], p["seq"], p["seq"], p["head_dim"],
                                 p["dtype"], name=self.key)
        if self.kind in _MEMORY_KINDS:
            op_class, reads, writes, flops = _MEMORY_KINDS[self.kind]
            return ops.memory_bound(op_class, p["elements"], p["dtype"], reads=reads,
                                    writes=writes, flops_per_element=flops, name=self.key)
        return None


def full_plan() -> list[PlanPoint]:
    """Return every point of the plan, in the order they run."""
    points = [PlanPoint("idle", "idle")]
    for dtype in ("bf16", "fp16", "fp32"):
        for size in (1024, 2048, 4096, 8192):
            points.append(PlanPoint(f"gemm-{dtype}-{size}", "gemm",
                                    {"m": size, "n": size, "k": size, "dtype": dtype}))
    points.append(PlanPoint("gemm-bf16-tall-k", "gemm",
                            {"m": 512, "n": 512, "k": 65536, "dtype": "bf16"}))
    for kind in _MEMORY_KINDS:
        for exponent in (22, 24, 26, 28):
            points.append(PlanPoint(f"{kind}-bf16-2^{exponent}", kind,
                                    {"elements": 2**exponent, "dtype": "bf16"}))
    for seq in (1024, 2048, 4096):
        points.append(PlanPoint(f"attention-bf16-{seq}", "attention",
                                {"batch": 4, "heads": 16, "seq": seq, "head_dim": 128,
                                 "dtype": "bf16"}))
    return points


@dataclass(frozen=True)
class ScaledPlan:
    points: list[PlanPoint]
    warmup_s: float
    steady_s: float

    @property
    def duration_s(self) -> float:
        return len(self.points) * (self.warmup_s + self.steady_s)


def scale_plan(points: list[PlanPoint], budget_s: float = DEFAULT_BUDGET_S) -> ScaledPlan:
    """Fit the plan into `budget_s` seconds: shorten the windows to their minimum, then
    drop points evenly within each kind, keeping at least one per kind."""
    full = ScaledPlan(points, WARMUP_S, STEADY_S)
    if full.duration_s <= budget_s:
        return full
    per_point_s = MIN_WARMUP_S + MIN_STEADY_S
    slots = int(budget_s // per_point_s)
    kinds = list(dict.fromkeys(point.kind for point in points))
    if slots < len(kinds):
        raise InputError(
            f"A budget of {budget_s:g} s is too small: the plan needs at least "
            f"{len(kinds) * per_point_s:g} s for one point of each of its {len(kinds)} kinds."
        )
    spare = (budget_s - slots * per_point_s) / max(slots, 1)
    steady_s = min(MIN_STEADY_S + spare, STEADY_S)
    return ScaledPlan(_thin(points, kinds, slots), MIN_WARMUP_S, steady_s)


def _thin(points: list[PlanPoint], kinds: list[str], slots: int) -> list[PlanPoint]:
    """Keep `slots` points, shared among kinds in proportion to their size."""
    by_kind = {kind: [p for p in points if p.kind == kind] for kind in kinds}
    quota = {kind: 1 for kind in kinds}
    remaining = slots - len(kinds)
    while remaining > 0:
        # Give the next slot to the kind with the smallest kept share of its points.
        candidates = [kind for kind in kinds if quota[kind] < len(by_kind[kind])]
        if not candidates:
            break
        kind = min(candidates, key=lambda name: quota[name] / len(by_kind[name]))
        quota[kind] += 1
        remaining -= 1
    kept = set()
    for kind, items in by_kind.items():
        step = len(items) / quota[kind]
        kept.update(items[int(i * step)].key for i in range(quota[kind]))
    return [point for point in points if point.key in kept]
