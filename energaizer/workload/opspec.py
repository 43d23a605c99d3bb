"""Op specs: the integer sizes and settings of one GPU launch, and their pricing.

A spec is what the aten mapping (`energaizer.workload.aten`) records for a launch. It
holds only integers, floats, bools and strings, so a shape template can rewrite the
sizes for another batch and sequence length, and identical launches can be priced once.
`build_op` prices a spec through the factories in `energaizer.workload.ops`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from energaizer.analyze.opclass import OpClass
from energaizer.workload import ops
from energaizer.workload.ops import Op

# Parameters of a spec that are not sizes: torch calls and nn.Module calls since the
# previous launch.
CPU_CALLS = "cpu_calls"
MODULE_CALLS = "module_calls"


class OpSpec(NamedTuple):
    """The integer sizes and settings of one GPU launch, before pricing.

    `kind` selects the factory: "gemm", "attention", "attention_backward",
    "convolution", "memory", "copy" or "fill". `params` contains the factory arguments as
    sorted (name, value) pairs, whose values are ints, tuples of ints, floats, bools
    or strings. Specs are hashable, so identical launches are priced once.
    """

    kind: str
    name: str
    phase: str
    dtype: str
    params: tuple[tuple[str, Any], ...]


def make_spec(kind: str, name: str, phase: str, dtype: str, **params: Any) -> OpSpec:
    """Create an OpSpec with its parameters in a canonical order."""
    return OpSpec(kind, name, phase, dtype, tuple(sorted(params.items())))


def build_ops(specs: Sequence[OpSpec], sequence: Sequence[int] | None = None) -> list[Op]:
    """Price specs into ops, in launch order, one Op per launch.

    Each distinct spec goes through its factory once. With `sequence`, `specs` are the
    distinct launches and `sequence` lists their indices in launch order. Every launch
    gets its own Op (and geometry dict), because later stages may set fields such as
    `tile` on one launch without touching the others.
    """
    if sequence is None:
        index: dict[OpSpec, int] = {}
        sequence = [index.setdefault(spec, len(index)) for spec in specs]
        specs = list(index)
    priced = [build_op(spec) for spec in specs]
    return [Op(op.op_class, op.name, op.dtype, op.flops, op.bytes, 1, dict(op.geometry),
               op.tensor_cores, op.phase, cpu_calls=op.cpu_calls,
               module_calls=op.module_calls)
            for op in (priced[position] for position in sequence)]


def build_op(spec: OpSpec) -> Op:
    """Price one spec through the factory its kind names."""
    params = dict(spec.params)
    cpu_calls = params.pop(CPU_CALLS, 1)
    module_calls = params.pop(MODULE_CALLS, 0)
    op = _priced_op(spec, params)
    op.cpu_calls = int(cpu_calls)
    op.module_calls = int(module_calls)
    return op


_UPCAST_SOFTMAX = frozenset({"aten::_softmax", "aten::_log_softmax", "aten::_safe_softmax"})


def fold_upcast_softmax(previous: OpSpec, spec: OpSpec) -> OpSpec | None:
    """Merge a 16-bit-to-fp32 copy into the softmax that reads it, as CUDA runs it.

    `softmax(x, dtype=torch.float32)` on a bf16 or fp16 tensor decomposes on the meta
    device into a `_to_copy` and an fp32 `_softmax`, but PyTorch's CUDA kernel reads the
    16-bit input and writes fp32 in one launch (its half_to_float path). Returns the
    merged softmax spec, or None when the pair is not that pattern.
    """
    if spec.name not in _UPCAST_SOFTMAX or spec.dtype != "fp32":
        return None
    if previous.name != "aten::_to_copy" or previous.dtype != "fp32":
        return None
    copied, softmax = dict(previous.params), dict(spec.params)
    source_bytes, upcast_bytes = copied.get("read_bytes"), copied.get("write_bytes")
    if not source_bytes or len(source_bytes) != 1 or upcast_bytes != softmax.get("read_bytes"):
        return None
    if 2 * source_bytes[0] != upcast_bytes[0]:
        return None
    softmax["read_bytes"] = source_bytes
    return spec._replace(params=tuple(sorted(softmax.items())))


def with_cpu_calls(spec: OpSpec, calls: int, modules: int = 0) -> OpSpec:
    """Return `spec` carrying the torch calls and nn.Module calls made since the previous
    launch."""
    extra = ((CPU_CALLS, calls), (MODULE_CALLS, modules))
    return spec._replace(params=tuple(sorted(spec.params + extra)))


def _priced_op(spec: OpSpec, params: dict[str, Any]) -> Op:
    if spec.kind == "gemm":
        return ops.gemm(params["m"], params["n"], params["k"], spec.dtype,
                        batch=params["batch"], shared_b=params["shared_b"],
                        name=spec.name, phase=spec.phase)
    if spec.kind in ("attention", "attention_backward"):
        return _build_attention(spec, params)
    if spec.kind == "convolution":
        return ops.convolution(
            params["batch"], params["in_channels"], params["out_channels"],
            params["height"], params["width"], params["kernel_h"], params["kernel_w"],
            spec.dtype, stride=params["stride"], padding=params["padding"],
            groups=params["groups"], name=spec.name, phase=spec.phase)
    if spec.kind == "memory":
        return _build_memory(spec, params)
    if spec.kind == "copy":
        return ops.copy(params["bytes"], kind=params["copy_kind"], name=spec.name,
                        phase=spec.phase)
    if spec.kind == "fill":
        return ops.fill(params["bytes"], name=spec.name, phase=spec.phase)
    raise ValueError(f"Unknown op spec kind {spec.kind!r}.")


def _build_attention(spec: OpSpec, params: dict[str, Any]) -> Op:
    op = ops.attention(params["batch"], params["heads"], params["query_len"],
                       params["key_len"], params["head_dim"], spec.dtype,
                       kv_heads=params["kv_heads"], causal=params["causal"],
                       name=spec.name, phase=spec.phase)
    if spec.kind == "attention":
        return op
    # NOTE: ops.attention() has no backward variant, so the backward launch scales the
    # forward price. FlashAttention-2's backward runs 5 matrix products where the forward
    # runs 2 (2.5x the FLOPs), and it reads Q, K, V, O and dO and writes dQ, dK and dV,
    # which is twice the forward's bytes.
    op.flops *= 2.5
    op.bytes *= 2.0
    op.geometry["backward"] = True
    return op


def _build_memory(spec: OpSpec, params: dict[str, Any]) -> Op:
    op_class = OpClass(params["op_class"])
    # The op's size is its largest tensor. The spec keeps every candidate rather than
    # the maximum, because which tensor is largest can change with batch and seq (a
    # 512-row position table against the gradient rows of a short sequence).
    elements = max(params["sized_elements"])
    size = ops.dtype_bytes(spec.dtype)
    # The factory counts reads and writes in tensors of `elements`. The spec stores the
    # bytes of each tensor instead, because tensors may differ from the op in dtype.
    reads = sum(params["read_bytes"]) / (elements * size)
    writes = sum(params["write_bytes"]) / (elements * size)
    return ops.memory_bound(op_class, elements, spec.dtype, reads=reads, writes=writes,
                            flops_per_element=params["flops_per_element"],
                            name=spec.name, phase=spec.phase)
