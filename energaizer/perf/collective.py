"""Collectives (NCCL-style ring algorithms) priced as latency plus bytes over the link."""

from __future__ import annotations

from energaizer.perf.clock import DeviceRates
from energaizer.perf.cost import LINK, KernelCost, busy_tuple
from energaizer.workload.ops import Op

# Start-up latency of a collective kernel and the added latency of each ring step
# (estimates: a few microseconds to start, one to two per hop over NVLink or PCIe).
COLLECTIVE_LAUNCH_LATENCY_S = 5.0e-6
COLLECTIVE_STEP_LATENCY_S = 1.5e-6
# Share of the link's nominal per-direction bandwidth that a collective sustains
# (estimate).
LINK_EFFICIENCY = 0.8
# Ring steps per collective for a world of w GPUs.
_RING_STEPS = {
    "all_reduce": lambda world: 2 * (world - 1),
    "all_gather": lambda world: world - 1,
    "reduce_scatter": lambda world: world - 1,
    "all_to_all": lambda world: world - 1,
    "broadcast": lambda world: world - 1,
    "send_recv": lambda world: 1,
}
_REDUCING = frozenset({"all_reduce", "reduce_scatter"})


def link_b_s(rates: DeviceRates) -> float:
    """Sustained per-direction bandwidth between GPUs: NVLink when the profile has it,
    else PCIe.

    NOTE: a profile's nvlink_gb_s may describe an optional bridge (A100 PCIe, H100 NVL)
    that links only pairs of GPUs, and it is used whenever it is set.
    """
    gpu = rates.gpu
    both_directions_gb_s = gpu.nvlink_gb_s if gpu.nvlink_gb_s else gpu.pcie_gb_s
    return both_directions_gb_s / 2 * 1e9 * LINK_EFFICIENCY


def ring_steps(kind: str | None, world_size: int) -> int:
    """Return the ring steps of a collective. A missing kind counts as all_gather."""
    if world_size <= 1:
        return 0
    if kind is None:
        return world_size - 1
    if kind not in _RING_STEPS:
        raise ValueError(
            f"Unknown collective kind {kind!r}. Expected one of {', '.join(_RING_STEPS)}."
        )
    return _RING_STEPS[kind](world_size)


def collective_cost(op: Op, rates: DeviceRates) -> KernelCost:
    """Price a collective, where op.bytes is what each GPU sends."""
    kind = op.geometry.get("kind")
    world_size = int(op.geometry.get("world_size") or 1)
    # A world of one GPU moves and reduces nothing, even if the op's counts are not zero.
    sent_bytes = max(op.bytes, 0.0) if world_size > 1 else 0.0
    reduce_flops = max(op.flops, 0.0) if world_size > 1 else 0.0
    # Each GPU reads what it sends and writes what it receives, and a reduction also
    # reads its local copy (estimate).
    dram_bytes = sent_bytes * (3.0 if kind in _REDUCING else 2.0)
    return KernelCost(
        prologue_s=COLLECTIVE_LAUNCH_LATENCY_S
        + COLLECTIVE_STEP_LATENCY_S * ring_steps(kind, world_size),
        main_s=sent_bytes / link_b_s(rates),
        epilogue_s=0.0,
        busy_s=busy_tuple(
            dram_s=dram_bytes / rates.dram_peak_b_s,
            l2_s=dram_bytes / rates.l2_b_s,
            fp32_s=reduce_flops / rates.cuda_flops_s(op.dtype),
        ),
        limiter=LINK,
    )
