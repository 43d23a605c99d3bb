"""Turn a traced GPU activity into a workload Op, using the shapes of its CPU op.

GEMMs, attention and convolutions become ops through the same factories as captured
models, so a traced `aten::addmm` and a captured one are priced alike. Memcpy and memset
use the byte count the trace recorded. Anything else becomes a memory-bound op over the
recorded input tensors. Returns None when nothing was recorded to price the activity.
"""

from __future__ import annotations

import functools
import json
import math

from energaizer.analyze.opclass import OpClass
from energaizer.workload import ops as factories
from energaizer.workload.ops import Op

# Element types the PyTorch profiler writes in "Input type", as energaizer dtypes.
TRACE_TYPES = {
    "float": "fp32", "double": "fp64", "c10::Half": "fp16", "half": "fp16",
    "c10::BFloat16": "bf16", "c10::Float8_e4m3fn": "fp8", "c10::Float8_e5m2": "fp8",
    "long int": "int64", "int": "int32", "short int": "int16", "signed char": "int8",
    "unsigned char": "uint8", "bool": "bool",
}
_MATMUL = {"aten::mm", "aten::matmul", "aten::bmm", "aten::addmm", "aten::baddbmm",
           "aten::addbmm", "aten::linear", "aten::_addmm_activation"}
_WITH_BIAS_FIRST = {"aten::addmm", "aten::baddbmm", "aten::addbmm", "aten::_addmm_activation"}
_ATTENTION = {
    "aten::_scaled_dot_product_flash_attention", "aten::_scaled_dot_product_efficient_attention",
    "aten::_scaled_dot_product_cudnn_attention", "aten::scaled_dot_product_attention",
    "aten::_flash_attention_forward", "aten::_efficient_attention_forward",
}
_CONVOLUTION = {"aten::convolution", "aten::_convolution", "aten::conv2d",
                "aten::cudnn_convolution"}
_MEMORY_CLASSES = {OpClass.ELEMENTWISE, OpClass.REDUCTION, OpClass.NORMALIZATION,
                   OpClass.SOFTMAX, OpClass.EMBEDDING}


@functools.lru_cache(maxsize=65536)
def trace_op(op_class: str, op_name: str, dims_json: str, types_json: str,
             category: str, nbytes: int, kernel_name: str = "") -> Op | None:
    """Build the Op of one traced activity, or None when it cannot be priced."""
    if category == "memcpy":
        if nbytes <= 0:
            return None
        host = any(tag in kernel_name for tag in ("HtoD", "DtoH", "Pinned", "Pageable"))
        return factories.copy(nbytes, kind="host" if host else "device")
    if category == "memset":
        return factories.fill(nbytes) if nbytes > 0 else None
    tensors, dtype = _tensors(dims_json, types_json)
    if not tensors:
        return None
    try:
        return _priced(OpClass(op_class), op_name, tensors, dtype)
    except (ValueError, ZeroDivisionError, IndexError):
        return None


def _tensors(dims_json: str, types_json: str) -> tuple[list[list[int]], str]:
    if not dims_json:
        return [], "fp32"
    try:
        dims = json.loads(dims_json)
        types = json.loads(types_json) if types_json else []
    except ValueError:
        return [], "fp32"
    tensors = [d for d in dims if isinstance(d, list) and d and all(
        isinstance(x, int) and x > 0 for x in d)]
    dtype = next((TRACE_TYPES[t] for t in types if t in TRACE_TYPES and TRACE_TYPES[t]
                  in ("fp32", "fp16", "bf16", "fp8", "fp64")), "fp32")
    return tensors, dtype


def _priced(op_class: OpClass, op_name: str, tensors: list[list[int]], dtype: str) -> Op | None:
    if op_name in _MATMUL:
        return _matmul(op_name, tensors, dtype)
    if op_name in _ATTENTION and len(tensors) >= 3 and len(tensors[0]) == 4:
        batch, heads, query_len, head_dim = tensors[0]
        key_len, kv_heads = tensors[1][-2], tensors[1][1]
        return factories.attention(batch, heads, query_len, key_len, head_dim, dtype,
                                   kv_heads=kv_heads, name=op_name)
    if op_name in _CONVOLUTION and len(tensors) >= 2 and len(tensors[0]) == 4 == len(tensors[1]):
        batch, in_channels, height, width = tensors[0]
        out_channels, per_group, kernel_h, kernel_w = tensors[1]
        groups = max(in_channels // per_group, 1)
        # Stride and padding are not recorded with the shapes; "same" padding at stride 1
        # keeps the output at the input size, an upper bound on the work.
        return factories.convolution(batch, in_channels, out_channels, height, width, kernel_h,
                                     kernel_w, dtype, padding=kernel_h // 2, groups=groups,
                                     name=op_name)
    if op_class in _MEMORY_CLASSES:
        elements = max(math.prod(t) for t in tensors)
        return factories.memory_bound(op_class, elements, dtype, reads=len(tensors), writes=1,
                                      name=op_name)
    return None


def _matmul(op_name: str, tensors: list[list[int]], dtype: str) -> Op | None:
    if op_name in _WITH_BIAS_FIRST and len(tensors) >= 3:
        tensors = tensors[1:]
    if len(tensors) < 2:
        return None
    left, right = tensors[0], tensors[1]
    if op_name == "aten::linear":
        return factories.gemm(math.prod(left[:-1]), right[0], left[-1], dtype, name=op_name)
    if len(left) < 2 or len(right) < 2 or left[-1] != right[-2]:
        return None
    batch = max(math.prod(left[:-2]), 1)
    return factories.gemm(left[-2], right[-1], left[-1], dtype, batch=batch, name=op_name,
                          shared_b=len(right) == 2)
