"""Streaming ops: elementwise, reductions, normalization, softmax, embedding lookups,
copies and fills, plus a roofline for any op without the geometry of a tiled model.

Their time is one DRAM latency to start, then the bytes over the sustained bandwidth,
unless their arithmetic takes longer. The launch setup cost is the correction term
Corrections.fixed_s, not part of these phases.
"""

from __future__ import annotations

import re

from energaizer.analyze.opclass import OpClass
from energaizer.perf.clock import DRAM_LATENCY_S, DeviceRates, has_tensor_rate
from energaizer.perf.cost import COMPUTE, LINK, MEMORY, KernelCost, busy_tuple
from energaizer.workload.ops import Op

# Share of an op's bytes, up to the usable L2 size, that hit in L2 because the kernel
# before it just wrote them there (estimate).
L2_RESIDENT_HIT_SHARE = 0.5
# Special-function operations per element: one exponential per softmax input, and one
# reciprocal square root per normalized row, taking rows of 256 or more (estimates).
SFU_OPS_PER_ELEMENT = {OpClass.SOFTMAX: 1.0, OpClass.NORMALIZATION: 1.0 / 256}
# Elementwise ops whose name shows a transcendental function get one SFU op per element.
# Short function names count only as whole words, so that "expand" or "using" do not.
_TRANSCENDENTAL_NAME = re.compile(
    r"(?i:gelu|silu|swish|sigmoid|tanh|softplus|mish|sqrt)"
    r"|(?<![A-Za-z])(?:[Ee]xp|[Ll]og|[Ss]in|[Cc]os|[Ee]rf|[Pp]ow)(?![a-z])"
)
# Host copies: one PCIe direction at this share of its nominal rate, after a start-up
# latency that, with the default 2 us launch setup cost, totals about 8 us (estimates).
PCIE_EFFICIENCY = 0.8
HOST_COPY_LATENCY_S = 6.0e-6


def uses_transcendental(op: Op) -> bool:
    """Return whether an elementwise op's name shows a transcendental function."""
    return op.op_class == OpClass.ELEMENTWISE and bool(_TRANSCENDENTAL_NAME.search(op.name))


def sfu_ops(op: Op) -> float:
    """Estimate the special-function operations of one call."""
    elements = float(op.geometry.get("elements") or 0)
    if uses_transcendental(op):
        return elements
    return elements * SFU_OPS_PER_ELEMENT.get(op.op_class, 0.0)


def streaming_cost(op: Op, rates: DeviceRates, l2_reuse: bool = True) -> KernelCost:
    """Price an op as a roofline over DRAM, L2 and its arithmetic.

    With `l2_reuse`, part of the bytes hit in L2 (L2_RESIDENT_HIT_SHARE). Pass False for
    data no recent kernel touched, such as the weights a GEMV streams.
    """
    total_bytes = max(op.bytes, 0.0)
    dram_bytes = total_bytes
    if l2_reuse:
        dram_bytes -= L2_RESIDENT_HIT_SHARE * min(total_bytes, rates.l2_usable_bytes)
    tensor = op.tensor_cores and has_tensor_rate(rates.gpu, op.dtype)
    compute_rate = rates.tensor_flops_s(op.dtype) if tensor else rates.cuda_flops_s(op.dtype)
    compute_s = max(op.flops, 0.0) / compute_rate
    sfu_s = sfu_ops(op) / rates.sfu_ops_s
    memory_s = max(dram_bytes / rates.dram_b_s, total_bytes / rates.l2_b_s)
    return KernelCost(
        prologue_s=DRAM_LATENCY_S,
        main_s=max(memory_s, compute_s, sfu_s),
        epilogue_s=0.0,
        busy_s=busy_tuple(
            dram_s=dram_bytes / rates.dram_peak_b_s,
            l2_s=total_bytes / rates.l2_b_s,
            tensor_s=compute_s if tensor else 0.0,
            fp32_s=0.0 if tensor else compute_s,
            sfu_s=sfu_s,
        ),
        limiter=COMPUTE if max(compute_s, sfu_s) > memory_s else MEMORY,
    )


def host_copy_cost(op: Op, rates: DeviceRates) -> KernelCost:
    """Price a copy between host and GPU memory over one direction of PCIe."""
    copied_bytes = float(op.geometry.get("bytes") or op.bytes)
    link_b_s = rates.gpu.pcie_gb_s / 2 * 1e9 * PCIE_EFFICIENCY
    return KernelCost(
        prologue_s=HOST_COPY_LATENCY_S,
        main_s=copied_bytes / link_b_s,
        epilogue_s=0.0,
        busy_s=busy_tuple(
            dram_s=copied_bytes / rates.dram_peak_b_s,
            l2_s=copied_bytes / rates.l2_b_s,
        ),
        limiter=LINK,
    )
