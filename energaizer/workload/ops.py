"""Operations of a workload: what each op computes and moves, independent of any GPU.

Every source of work (a captured model, an op-list file, a trace, a serving spec) becomes
a list of `Op`. The factories below are the one place where FLOPs and bytes are derived
from shapes, so every source prices the same shape the same way. Byte counts are the
minimum DRAM traffic: every operand read once and the output written once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from energaizer.analyze.opclass import OpClass
from energaizer.analyze.tiles import TileConfig

DTYPE_BYTES = {
    "fp64": 8, "fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1,
    "int64": 8, "int32": 4, "int16": 2, "uint8": 1, "bool": 1,
}
# Dtypes the tensor cores take; others run on CUDA cores.
TENSOR_CORE_DTYPES = frozenset({"tf32", "fp16", "bf16", "fp8", "int8"})


def dtype_bytes(dtype: str) -> int:
    """Return the element size of a dtype name, raising ValueError for unknown names."""
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise ValueError(
            f"Unknown dtype {dtype!r}; expected one of {', '.join(sorted(DTYPE_BYTES))}."
        ) from None


@dataclass
class Op:
    """One kind of GPU operation and how many times it runs.

    `flops` and `bytes` are per call. `geometry` contains the class-specific sizes the
    performance model needs (see the factories). `measured_s` is the per-call duration
    when a trace recorded it. `cpu_calls` counts the torch API calls Python makes from
    the previous launch up to and including this one, and `module_calls` the nn.Module
    calls in that span; both cost CPU time in eager mode.
    """

    op_class: OpClass
    name: str
    dtype: str
    flops: float
    bytes: float
    count: int = 1
    geometry: dict[str, Any] = field(default_factory=dict)
    tensor_cores: bool = False
    phase: str = ""
    tile: TileConfig | None = None
    measured_s: float | None = None
    cpu_calls: int = 1  # torch calls the CPU makes from the previous launch to this one
    module_calls: int = 0  # nn.Module calls in the same span

    @property
    def intensity(self) -> float:
        """Arithmetic intensity in FLOP per byte."""
        return self.flops / self.bytes if self.bytes > 0 else 0.0

    def times(self, count: int) -> Op:
        """Return a copy that runs `count` times."""
        return replace(self, count=count)


def gemm(m: int, n: int, k: int, dtype: str, *, batch: int = 1, name: str = "gemm",
         shared_b: bool = False, phase: str = "") -> Op:
    """Return a (batched) matrix multiply C[batch, m, n] = A[batch, m, k] @ B[batch, k, n].

    `shared_b` means one B serves every batch entry (a linear layer over a batch of
    sequences flattened into m is the usual case and needs no batch at all).
    """
    size = dtype_bytes(dtype)
    b_count = 1 if shared_b else batch
    moved = (batch * m * k + b_count * k * n + batch * m * n) * size
    return Op(
        OpClass.GEMM, name, dtype, 2.0 * batch * m * n * k, float(moved),
        geometry={"m": m, "n": n, "k": k, "batch": batch},
        tensor_cores=dtype in TENSOR_CORE_DTYPES, phase=phase,
    )


def attention(batch: int, heads: int, query_len: int, key_len: int, head_dim: int,
              dtype: str, *, kv_heads: int | None = None, causal: bool = False,
              name: str = "flash_attention", phase: str = "") -> Op:
    """Fused attention (FlashAttention-style): softmax(Q K^T) V without materializing
    the score matrix.

    A causal mask lets the i-th of the last `query_len` positions see `key_len -
    query_len + i` keys, so it skips query_len / (2 key_len) of the work: about half for
    a square problem, less when the queries follow a cached prefix."""
    size = dtype_bytes(dtype)
    kv_heads = kv_heads or heads
    work = float(batch * heads * query_len * key_len * head_dim)
    if causal and 0 < query_len <= key_len:
        work *= 1.0 - query_len / (2.0 * key_len)
    moved = (2 * batch * heads * query_len * head_dim
             + 2 * batch * kv_heads * key_len * head_dim) * size
    return Op(
        OpClass.ATTENTION, name, dtype, 4.0 * work, float(moved),
        geometry={"batch": batch, "heads": heads, "kv_heads": kv_heads,
                  "query_len": query_len, "key_len": key_len, "head_dim": head_dim,
                  "causal": causal},
        tensor_cores=dtype in TENSOR_CORE_DTYPES, phase=phase,
    )


def convolution(batch: int, in_channels: int, out_channels: int, height: int, width: int,
                kernel_h: int, kernel_w: int, dtype: str, *, stride: int = 1,
                padding: int = 0, groups: int = 1, name: str = "convolution",
                phase: str = "", allow_tf32: bool = True) -> Op:
    """Return a 2-D convolution, priced as the implicit GEMM cuDNN runs:
    m = batch x output pixels, n = out_channels / groups, k = in_channels / groups x window,
    repeated per group.

    PyTorch lets cuDNN run fp32 convolutions on tensor cores in TF32
    (`torch.backends.cudnn.allow_tf32` defaults to True), so with `allow_tf32` an fp32
    convolution is priced at the TF32 rate where the GPU has one.
    """
    size = dtype_bytes(dtype)
    if dtype == "fp32" and allow_tf32:
        dtype = "tf32"
    out_h = (height + 2 * padding - kernel_h) // stride + 1
    out_w = (width + 2 * padding - kernel_w) // stride + 1
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"Convolution output is empty for a {height}x{width} input and "
                         f"a {kernel_h}x{kernel_w} kernel with stride {stride}.")
    m = batch * out_h * out_w
    n = out_channels // groups
    k = (in_channels // groups) * kernel_h * kernel_w
    moved = (batch * in_channels * height * width
             + out_channels * (in_channels // groups) * kernel_h * kernel_w
             + batch * out_channels * out_h * out_w) * size
    return Op(
        OpClass.CONVOLUTION, name, dtype, 2.0 * groups * m * n * k, float(moved),
        geometry={"m": m, "n": n, "k": k, "batch": groups, "out_h": out_h, "out_w": out_w},
        tensor_cores=dtype in TENSOR_CORE_DTYPES, phase=phase,
    )


def memory_bound(op_class: OpClass, elements: int, dtype: str, *, reads: float = 1.0,
                 writes: float = 1.0, flops_per_element: float = 1.0, name: str = "",
                 phase: str = "") -> Op:
    """Return an op whose cost is streaming its tensors: elementwise, normalization,
    softmax, reduction, embedding lookups. `reads` and `writes` count tensors of
    `elements`."""
    size = dtype_bytes(dtype)
    return Op(
        op_class, name or op_class.value, dtype, flops_per_element * elements,
        float(elements * (reads + writes) * size),
        geometry={"elements": elements, "reads": reads, "writes": writes}, phase=phase,
    )


def copy(nbytes: int, *, kind: str = "device", name: str = "memcpy", phase: str = "") -> Op:
    """Return a memcpy of `nbytes`. `kind` is "device" (on the GPU) or "host" (over PCIe)."""
    moved = 2.0 * nbytes if kind == "device" else float(nbytes)
    return Op(OpClass.MEMCPY, name, "uint8", 0.0, moved,
              geometry={"bytes": nbytes, "kind": kind}, phase=phase)


def fill(nbytes: int, *, name: str = "memset", phase: str = "") -> Op:
    """Return a memset of `nbytes`."""
    return Op(OpClass.MEMSET, name, "uint8", 0.0, float(nbytes),
              geometry={"bytes": nbytes}, phase=phase)


def collective(kind: str, nbytes: int, world_size: int, dtype: str = "bf16", *,
               name: str = "", phase: str = "") -> Op:
    """Return a collective over `world_size` GPUs moving a buffer of `nbytes` per GPU.

    `kind` is all_reduce, all_gather, reduce_scatter, broadcast, all_to_all or send_recv.
    Bytes are what each GPU sends with the ring algorithm.
    """
    factors = {
        "all_reduce": 2.0 * (world_size - 1) / world_size,
        "all_gather": (world_size - 1) / world_size,
        "reduce_scatter": (world_size - 1) / world_size,
        "all_to_all": (world_size - 1) / world_size,
        "broadcast": 1.0,
        "send_recv": 1.0,
    }
    if kind not in factors:
        raise ValueError(f"Unknown collective {kind!r}; expected one of {', '.join(factors)}.")
    sent = factors[kind] * nbytes if world_size > 1 else 0.0
    elements = nbytes // dtype_bytes(dtype)
    reduce_flops = float(elements) if kind in ("all_reduce", "reduce_scatter") else 0.0
    return Op(OpClass.COMMUNICATION, name or kind, dtype, reduce_flops, float(sent),
              geometry={"kind": kind, "bytes": nbytes, "world_size": world_size}, phase=phase)


def total(ops: list[Op], attribute: str) -> float:
    """Sum a per-call attribute over ops, weighted by their counts."""
    return math.fsum(getattr(op, attribute) * op.count for op in ops)
