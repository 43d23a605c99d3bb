"""FLOPs and bytes of an operator from the input shapes and types a trace recorded.

Only the operators whose cost follows from their inputs alone are priced; anything else
returns None. Byte counts assume each operand is read once and the output written once,
which is what a well-tiled kernel achieves when its working set fits in L2.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

# Element sizes of the type names the PyTorch profiler writes in "Input type".
_TYPE_BYTES = {
    "float": 4, "double": 8, "c10::Half": 2, "c10::BFloat16": 2, "half": 2,
    "c10::Float8_e4m3fn": 1, "c10::Float8_e5m2": 1, "long int": 8, "int": 4,
    "short int": 2, "signed char": 1, "unsigned char": 1, "bool": 1,
}
_TYPE_DTYPE = {
    "float": "fp32", "double": "fp64", "c10::Half": "fp16", "half": "fp16",
    "c10::BFloat16": "bf16", "c10::Float8_e4m3fn": "fp8", "c10::Float8_e5m2": "fp8",
    "signed char": "int8", "unsigned char": "int8",
}

_MATMUL_OPS = {"aten::mm", "aten::matmul", "aten::bmm", "aten::addmm", "aten::baddbmm",
               "aten::addbmm", "aten::linear", "aten::_addmm_activation"}
_ATTENTION_OPS = {
    "aten::_scaled_dot_product_flash_attention",
    "aten::_scaled_dot_product_efficient_attention",
    "aten::_scaled_dot_product_cudnn_attention",
    "aten::scaled_dot_product_attention",
    "aten::_flash_attention_forward",
    "aten::_efficient_attention_forward",
}
_CONV_OPS = {"aten::convolution", "aten::_convolution", "aten::conv2d", "aten::conv1d",
             "aten::conv3d", "aten::cudnn_convolution"}


@dataclass(frozen=True)
class OpCost:
    """Work of one operator call."""

    flops: float
    bytes: float
    dtype: str  # fp32, fp16, bf16, fp8, int8 or fp64
    approximate: bool = False  # True when a shape had to be assumed

    @property
    def intensity(self) -> float:
        """Arithmetic intensity in FLOP per byte."""
        return self.flops / self.bytes if self.bytes > 0 else 0.0


def op_cost(op_name: str, dims_json: str, types_json: str) -> OpCost | None:
    """Price one recorded operator call; None when its cost cannot be derived."""
    if not dims_json:
        return None
    try:
        dims = json.loads(dims_json)
        types = json.loads(types_json) if types_json else []
    except ValueError:
        return None
    tensors = [d for d in dims if isinstance(d, list) and d and all(isinstance(x, int) for x in d)]
    if not tensors:
        return None
    element_bytes, dtype = _element_type(types)
    if op_name in _MATMUL_OPS:
        return _matmul_cost(op_name, tensors, element_bytes, dtype)
    if op_name in _ATTENTION_OPS:
        return _attention_cost(tensors, element_bytes, dtype)
    if op_name in _CONV_OPS:
        return _conv_cost(tensors, element_bytes, dtype)
    # Any other op is priced as elementwise: one operation per element of its largest
    # input, every input read and an output of the same total size written.
    elements = sum(math.prod(t) for t in tensors)
    largest = max(math.prod(t) for t in tensors)
    return OpCost(flops=float(max(largest, 1)), bytes=2.0 * elements * element_bytes, dtype=dtype)


def _element_type(types: list) -> tuple[int, str]:
    for name in types:
        if name in _TYPE_DTYPE:
            return _TYPE_BYTES[name], _TYPE_DTYPE[name]
    return 4, "fp32"


def _matmul_cost(op_name: str, tensors: list[list[int]], size: int, dtype: str) -> OpCost | None:
    if op_name in ("aten::addmm", "aten::baddbmm", "aten::addbmm", "aten::_addmm_activation"):
        tensors = tensors[1:] if len(tensors) >= 3 else tensors
    if len(tensors) < 2:
        return None
    left, right = tensors[0], tensors[1]
    if op_name == "aten::linear":
        batch, k, n = math.prod(left[:-1]), left[-1], right[0]
        m = 1
    elif len(left) < 2 or len(right) < 2:
        return None
    else:
        m, k, n = left[-2], left[-1], right[-1]
        batch = max(math.prod(left[:-2]), math.prod(right[:-2]), 1)
    rows = batch * m
    flops = 2.0 * rows * n * k
    operand_bytes = (rows * k + max(math.prod(right[:-2]), 1) * k * n + rows * n) * size
    return OpCost(flops, float(operand_bytes), dtype)


def _attention_cost(tensors: list[list[int]], size: int, dtype: str) -> OpCost | None:
    if len(tensors) < 3 or len(tensors[0]) != 4:
        return None
    batch, heads, query_len, head_dim = tensors[0]
    key_len = tensors[1][-2]
    flops = 4.0 * batch * heads * query_len * key_len * head_dim
    moved = (2 * batch * heads * query_len * head_dim + 2 * batch * heads * key_len * head_dim) * size
    return OpCost(flops, float(moved), dtype)


def _conv_cost(tensors: list[list[int]], size: int, dtype: str) -> OpCost | None:
    if len(tensors) < 2 or len(tensors[0]) < 3 or len(tensors[1]) != len(tensors[0]):
        return None
    inputs, weight = tensors[0], tensors[1]
    batch, spatial = inputs[0], math.prod(inputs[2:])
    out_channels, window = weight[0], math.prod(weight[1:])
    # Stride and padding are not recorded with the shapes, so the output is assumed to
    # keep the input's spatial size (stride 1, same padding): an upper bound on FLOPs.
    flops = 2.0 * batch * spatial * out_channels * window
    moved = (math.prod(inputs) + math.prod(weight) + batch * out_channels * spatial) * size
    return OpCost(flops, float(moved), dtype, approximate=True)
