"""Analytical cost of one kernel call before correction terms are applied."""

from __future__ import annotations

from dataclasses import dataclass

from energaizer.analyze.tiles import TileConfig

# Module activity keys, in the order of KernelCost.busy_s.
MODULES = ("dram", "l2", "smem", "tensor", "fp32", "sfu")

# Limits on a kernel's main phase, and LATENCY for a time that fixed costs dominate.
COMPUTE = "compute"
MEMORY = "memory"
LATENCY = "latency"
LINK = "link"

# Share of an active SM's CUDA-core issue slots spent on address and loop arithmetic in
# tiled kernels (estimate).
ADDRESS_MATH_SHARE = 0.05


@dataclass(frozen=True)
class KernelCost:
    """Phase times of one call and the time each module needs at full rate.

    `busy_s` follows MODULES: the seconds each module would need for the call's work at
    its peak rate, so that busy_s / time_s is the module's activity. `limiter` is COMPUTE,
    MEMORY or LINK, whichever bounds the main phase.
    """

    prologue_s: float
    main_s: float
    epilogue_s: float
    busy_s: tuple[float, float, float, float, float, float]
    limiter: str
    tiles: int | None = None
    waves: float | None = None
    last_wave_fill: float | None = None
    tile: TileConfig | None = None
    split_k: int = 1

    @property
    def analytical_s(self) -> float:
        """Sum of the three phases, the time with all correction factors at 1 and no
        setup cost."""
        return self.prologue_s + self.main_s + self.epilogue_s


def busy_tuple(*, dram_s: float = 0.0, l2_s: float = 0.0, smem_s: float = 0.0,
               tensor_s: float = 0.0, fp32_s: float = 0.0,
               sfu_s: float = 0.0) -> tuple[float, float, float, float, float, float]:
    """Pack per-module busy seconds in MODULES order."""
    return (dram_s, l2_s, smem_s, tensor_s, fp32_s, sfu_s)
