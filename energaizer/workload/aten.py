"""Map the aten operators a model runs to workload ops.

The capture (`energaizer.workload.capture`) records every aten call of a forward,
backward or optimizer step on the meta device. `map_call` turns one call into zero or more
`OpSpec` (`energaizer.workload.opspec`), and `build_op` turns an `OpSpec` into an `Op`
through the factories in `energaizer.workload.ops`. The specs hold only the integer sizes of the call, so a shape
template can rewrite those integers for another batch and sequence length.

Which calls launch a kernel, following what eager PyTorch does on a CUDA GPU:

* View and metadata ops (view, reshape aliases, transpose, expand, slice, select,
  permute, squeeze, detach, split, empty tensors, ...) launch none and are dropped.
* zeros, zero_ and zeros_like launch a memset. ones, full, fill_, scalar_tensor and
  arange launch a small fill kernel, which is priced as an elementwise op that only
  writes.
* A copy (clone, copy_, _to_copy) between two contiguous tensors of the same dtype is a
  device memcpy; any other copy is an elementwise kernel.
* Calls whose tensors all live on the CPU (optimizer step counters, Python scalars
  wrapped in tensors) launch nothing on the GPU and are dropped.
* Calls on empty tensors launch nothing and are dropped.

Memory-bound ops read every input tensor once and write every output once. A tensor
counts its distinct elements, so a broadcast input (stride 0) counts only what is stored,
and gathers (embedding, index, index_select, gather) read only the rows they return.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from energaizer.analyze.opclass import OpClass
from energaizer.workload import ops
from energaizer.workload.opspec import (  # noqa: F401 - re-exported for the capture modules
    CPU_CALLS,
    MODULE_CALLS,
    OpSpec,
    build_op,
    build_ops,
    fold_upcast_softmax,
    make_spec,
    with_cpu_calls,
)

# Names are aten overload packets without the "aten::" prefix.
METADATA_OPS = frozenset({
    "view", "_unsafe_view", "reshape", "_reshape_alias", "view_as", "t", "t_", "transpose",
    "transpose_", "expand", "expand_as", "unsqueeze", "unsqueeze_", "squeeze", "squeeze_",
    "slice", "select", "permute", "as_strided", "as_strided_", "alias", "detach", "detach_",
    "split", "split_with_sizes", "chunk", "unbind", "narrow", "diagonal", "movedim",
    "unfold", "view_as_real", "view_as_complex", "_conj", "conj", "resolve_conj",
    "resolve_neg", "lift_fresh", "lift", "empty", "empty_like", "empty_strided",
    "new_empty", "new_empty_strided", "resize_", "set_", "_local_scalar_dense",
    "_record_function_enter_new", "_record_function_exit", "unflatten", "flatten",
    "contiguous", "sym_size", "sym_stride", "sym_numel", "is_same_size", "_has_compatible_shallow_copy_type",
})


MEMSET_OPS = frozenset({"zeros", "zeros_like", "new_zeros", "zero_"})
FILL_OPS = frozenset({
    "ones", "ones_like", "new_ones", "full", "full_like", "new_full", "fill_", "fill",
    "scalar_tensor", "arange", "linspace", "rand", "randn", "rand_like", "randn_like",
    "uniform_", "normal_", "bernoulli_", "randint", "randperm",
})
COPY_OPS = frozenset({"clone", "copy_", "_to_copy", "_copy_from", "_copy_from_and_resize"})
GEMM_OPS = frozenset({"mm", "addmm", "bmm", "baddbmm", "_addmm_activation", "matmul",
                      "linear", "addbmm", "_scaled_mm"})
CONVOLUTION_OPS = frozenset({"convolution", "_convolution", "cudnn_convolution",
                             "conv2d", "conv1d", "conv_transpose2d", "conv_transpose1d"})
# Fused attention ops whose query and key are [batch, heads, length, head_dim].
ATTENTION_OPS = frozenset({
    "_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention",
})
NORMALIZATION_OPS = frozenset({
    "native_layer_norm", "layer_norm", "native_batch_norm", "_native_batch_norm_legit",
    "_native_batch_norm_legit_no_training", "_native_batch_norm_legit_functional",
    "batch_norm", "native_group_norm", "group_norm", "_fused_rms_norm", "rms_norm",
    "instance_norm", "cudnn_batch_norm", "native_batch_norm_backward",
    "cudnn_batch_norm_backward", "native_layer_norm_backward", "native_group_norm_backward",
    "_fused_rms_norm_backward",
})
SOFTMAX_OPS = frozenset({"_softmax", "_safe_softmax", "_log_softmax", "softmax",
                         "log_softmax", "_softmax_backward_data", "_log_softmax_backward_data"})
REDUCTION_OPS = frozenset({
    "sum", "mean", "amax", "amin", "max", "min", "var", "std", "var_mean", "std_mean",
    "argmax", "argmin", "prod", "all", "any", "norm", "linalg_vector_norm", "logsumexp",
    "cumsum", "cumprod", "nll_loss_forward", "nll_loss_backward", "nll_loss",
    "nll_loss2d_forward", "nll_loss2d_backward", "cross_entropy_loss", "mse_loss",
    "mse_loss_backward", "topk", "sort", "count_nonzero",
    "adaptive_avg_pool2d", "_adaptive_avg_pool2d", "adaptive_avg_pool1d", "avg_pool2d",
    "max_pool2d", "max_pool2d_with_indices", "adaptive_max_pool2d", "_adaptive_avg_pool2d_backward",
    "avg_pool2d_backward", "max_pool2d_with_indices_backward", "adaptive_max_pool2d_backward",
})
EMBEDDING_OPS = frozenset({"embedding", "embedding_dense_backward", "embedding_backward",
                           "_embedding_bag", "embedding_bag"})
# Ops that read from their first tensor only the elements they return.
GATHER_OPS = frozenset({"embedding", "index", "index_select", "gather", "_unsafe_index",
                        "take", "take_along_dim", "masked_select"})
ELEMENTWISE_OPS = frozenset({
    "abs", "add", "add_", "addcdiv", "addcdiv_", "addcmul", "addcmul_", "bitwise_and",
    "bitwise_or", "bitwise_not", "bitwise_xor", "clamp", "clamp_", "clamp_min", "clamp_max",
    "cos", "sin", "div", "div_", "eq", "ne", "lt", "le", "gt", "ge", "erf", "exp", "exp_",
    "expm1", "log", "log1p", "gelu", "gelu_backward", "hardswish", "hardswish_backward",
    "hardsigmoid", "hardsigmoid_backward", "hardtanh", "hardtanh_backward", "leaky_relu",
    "leaky_relu_backward", "lerp", "lerp_", "logical_and", "logical_or", "logical_not",
    "masked_fill", "masked_fill_", "maximum", "minimum", "mul", "mul_", "neg", "pow",
    "reciprocal", "relu", "relu_", "rsqrt", "sqrt", "sigmoid", "sigmoid_backward", "sign",
    "silu", "silu_", "silu_backward", "sub", "sub_", "rsub", "tanh", "tanh_backward",
    "threshold", "threshold_backward", "where", "cat", "stack", "index", "index_select",
    "gather", "scatter", "scatter_", "scatter_add", "scatter_add_", "index_put",
    "index_put_", "index_add", "index_add_", "_unsafe_index", "_unsafe_index_put", "tril",
    "triu", "tril_", "triu_", "remainder", "floor", "ceil", "round", "trunc", "native_dropout",
    "native_dropout_backward", "constant_pad_nd", "reflection_pad2d", "replication_pad2d",
    "upsample_nearest2d", "upsample_bilinear2d", "upsample_nearest2d_backward",
    "upsample_bilinear2d_backward", "roll", "flip", "repeat", "repeat_interleave", "elu",
    "elu_backward", "mish", "mish_backward", "softplus", "softplus_backward", "logit",
    "nan_to_num", "isinf", "isnan", "isfinite", "glu", "glu_backward", "masked_scatter",
    "slice_backward", "select_backward", "select_scatter", "slice_scatter", "diagonal_backward",
    "as_strided_scatter", "unfold_backward", "expand_copy", "permute_copy", "_unsafe_view_copy",
    "diff", "square", "exp2", "log2", "fmod", "atan", "atan2", "sinh", "cosh", "fmax", "fmin",
    "mul_tensor", "bitwise_left_shift", "bitwise_right_shift", "take", "take_along_dim",
    "masked_select", "polar", "complex", "cumsum_backward", "erfinv", "clamp_min_",
    "pow_", "sqrt_", "rsqrt_", "neg_", "tanh_", "sigmoid_", "gelu_", "hardtanh_", "where_",
})

# FLOPs per element for the memory-bound classes. These are rough counts of the
# arithmetic per element and matter little, since these ops are priced by their bytes.
FLOPS_PER_ELEMENT = {
    OpClass.ELEMENTWISE: 1.0,
    OpClass.REDUCTION: 1.0,
    OpClass.EMBEDDING: 0.0,
    OpClass.SOFTMAX: 5.0,  # max, subtract, exp, sum, divide
    OpClass.NORMALIZATION: 5.0,  # mean, variance, subtract, scale, shift
}

# torch dtype names (str(torch.bfloat16) minus "torch.") to energaizer dtype names.
TORCH_DTYPES = {
    "float64": "fp64", "float32": "fp32", "float16": "fp16", "bfloat16": "bf16",
    "float8_e4m3fn": "fp8", "float8_e5m2": "fp8", "float8_e4m3fnuz": "fp8",
    "float8_e5m2fnuz": "fp8", "int64": "int64", "int32": "int32", "int16": "int16",
    "int8": "int8", "uint8": "uint8", "bool": "bool",
}

# Launch limits of PyTorch's multi_tensor_apply (ATen/native/cuda/MultiTensorApply.cuh,
# PyTorch 2.x). Each block handles one chunk of 65536 elements, and one launch takes at
# most 320 blocks. A launch also takes at most 110, 64, 48, 36 or 30 tensors when the op
# touches 1, 2, 3, 4 or 5 tensor lists.
FOREACH_CHUNK_ELEMENTS = 65536
FOREACH_MAX_BLOCKS = 320
FOREACH_MAX_TENSORS = (110, 64, 48, 36, 30)


# ---------------------------------------------------------------------------------------
# Mapping one aten call


class TensorInfo(NamedTuple):
    """Shape facts of one tensor argument or result."""

    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: str  # energaizer name, or the torch name when energaizer has none
    itemsize: int
    device: str

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def stored_elements(self) -> int:
        """Elements the tensor occupies in memory: broadcast (stride 0) dims count once."""
        return math.prod(size for size, step in zip(self.shape, self.stride) if step != 0)

    @property
    def stored_bytes(self) -> int:
        return self.stored_elements * self.itemsize

    @property
    def contiguous(self) -> bool:
        expected = 1
        for size, step in reversed(list(zip(self.shape, self.stride))):
            if size != 1 and step != expected:
                return False
            expected *= size
        return True


class Call(NamedTuple):
    """One aten call as the capture recorded it.

    `arguments` maps the schema's argument names to values, with tensors replaced by
    TensorInfo and lists of tensors by lists of TensorInfo. `outputs` lists the tensor
    results in order.
    """

    name: str  # overload packet name without "aten::", e.g. "addmm"
    arguments: dict[str, Any]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    inplace: bool


class Mapped(NamedTuple):
    """The specs of one call, and whether its name had no mapping rule."""

    specs: list[OpSpec]
    unmapped: bool


def map_call(call: Call, phase: str, *, in_normalization: bool = False) -> Mapped:
    """Turn one aten call into the specs of the kernels it launches.

    `in_normalization` is True while a normalization module runs, such as an RMSNorm
    written as separate ops. Its elementwise and reduction pieces are then classed as
    normalization.
    """
    name = call.name
    if name in METADATA_OPS:
        return Mapped([], False)
    tensors = call.inputs + call.outputs
    if not any(t.device == "meta" for t in tensors):
        return Mapped([], False)
    if name.startswith("_foreach_"):
        return Mapped(_map_foreach(call, phase), False)
    if call.outputs and not call.inplace and all(t.numel == 0 for t in call.outputs):
        return Mapped([], False)
    label = f"aten::{name}"
    mapper = _structured_mapper(name)
    if mapper is not None:
        specs = mapper(call, label, phase)
        if specs is not None:
            return Mapped(specs, False)
        # Shapes the mapper cannot read (a 3-D convolution, a 1-D matmul) are priced by
        # their bytes and reported as unmapped.
        return Mapped(_memory_specs(call, label, phase, OpClass.ELEMENTWISE), True)
    if name in MEMSET_OPS:
        written = _written(call)
        return Mapped([make_spec("fill", label, phase, "uint8", bytes=t.stored_bytes)
                       for t in written if t.numel], False)
    if name in FILL_OPS:
        return Mapped(_memory_specs(call, label, phase, OpClass.ELEMENTWISE, reads=[]), False)
    if name in COPY_OPS:
        return Mapped(_map_copy(call, label, phase), False)
    op_class = _memory_class(name)
    unmapped = op_class is None
    if op_class is None:
        op_class = OpClass.ELEMENTWISE
    if in_normalization and op_class in (OpClass.ELEMENTWISE, OpClass.REDUCTION):
        op_class = OpClass.NORMALIZATION
    return Mapped(_memory_specs(call, label, phase, op_class), unmapped)


def _structured_mapper(name: str) -> Any:
    """Return the mapper of a GEMM, convolution or attention op, or None for other ops."""
    if name in GEMM_OPS:
        return _map_gemm
    if name in CONVOLUTION_OPS:
        return _map_convolution
    if name == "convolution_backward":
        return _map_convolution_backward
    if name in ATTENTION_OPS:
        return _map_attention
    return None


def _memory_class(name: str) -> OpClass | None:
    if name in NORMALIZATION_OPS:
        return OpClass.NORMALIZATION
    if name in SOFTMAX_OPS:
        return OpClass.SOFTMAX
    if name in EMBEDDING_OPS:
        return OpClass.EMBEDDING
    if name in REDUCTION_OPS:
        return OpClass.REDUCTION
    if name in ELEMENTWISE_OPS:
        return OpClass.ELEMENTWISE
    # A backward op takes the class of its forward op.
    for suffix in ("_backward_data", "_backward_input", "_backward_weight", "_backward"):
        if name.endswith(suffix):
            forward = name[: -len(suffix)]
            if forward in METADATA_OPS:
                return OpClass.ELEMENTWISE
            return _memory_class(forward)
    return None


def _written(call: Call) -> list[TensorInfo]:
    """Tensors the call writes: its results, or its first argument when in place."""
    if call.outputs:
        return call.outputs
    return call.inputs[:1] if call.inplace else []


def _op_dtype(tensors: Iterable[TensorInfo]) -> TensorInfo | None:
    """Return the tensor whose dtype names the op: the first floating-point one, else the
    first."""
    first = None
    for tensor in tensors:
        if first is None:
            first = tensor
        if tensor.dtype in ("fp64", "fp32", "fp16", "bf16", "fp8"):
            return tensor
    return first


def _memory_specs(call: Call, label: str, phase: str, op_class: OpClass, *,
                  reads: list[TensorInfo] | None = None) -> list[OpSpec]:
    written = _written(call)
    if reads is None:
        reads = [t for t in call.inputs if t.device == "meta"]
        if call.name in GATHER_OPS and reads and written:
            # The source is read only where the output gathers from; the indices are
            # read in full.
            gathered = sum(t.stored_bytes for t in written)
            indices = reads[1:]
            read_bytes = [gathered] + [t.stored_bytes for t in indices]
            return _memory_spec(label, phase, op_class, written + indices, read_bytes,
                                written)
    read_bytes = [t.stored_bytes for t in reads]
    return _memory_spec(label, phase, op_class, written + reads, read_bytes, written)


def _memory_spec(label: str, phase: str, op_class: OpClass, sized: list[TensorInfo],
                 read_bytes: list[int], written: list[TensorInfo]) -> list[OpSpec]:
    """Return one memory-bound spec. Its dtype comes from the written tensors, and its
    element count is that of the largest tensor in `sized`."""
    meta = [t for t in sized if t.device == "meta"]
    named = _op_dtype(written + meta) if written else _op_dtype(meta)
    if named is None:
        return []
    dtype = named.dtype if named.dtype in ops.DTYPE_BYTES else "uint8"
    sized_elements = tuple(t.stored_elements for t in meta)
    if max(sized_elements) == 0:
        return []
    write_bytes = tuple(t.stored_bytes for t in written if t.device == "meta")
    return [make_spec("memory", label, phase, dtype, op_class=op_class.value,
                      sized_elements=sized_elements, read_bytes=tuple(read_bytes),
                      write_bytes=write_bytes,
                      flops_per_element=FLOPS_PER_ELEMENT[op_class])]


def _map_copy(call: Call, label: str, phase: str) -> list[OpSpec]:
    if call.name == "copy_":
        destination = call.inputs[0]
        sources = call.inputs[1:2]
    else:
        destination = call.outputs[0] if call.outputs else None
        sources = call.inputs[:1]
    if destination is None or not sources:
        return _memory_specs(call, label, phase, OpClass.ELEMENTWISE)
    source = sources[0]
    if source.device != destination.device:
        return [make_spec("copy", label, phase, "uint8", bytes=destination.stored_bytes,
                          copy_kind="host")]
    if (source.dtype == destination.dtype and source.contiguous and destination.contiguous
            and source.shape == destination.shape):
        return [make_spec("copy", label, phase, "uint8", bytes=destination.stored_bytes,
                          copy_kind="device")]
    return _memory_spec(label, phase, OpClass.ELEMENTWISE, [destination, source],
                        [source.stored_bytes], [destination])


def _map_gemm(call: Call, label: str, phase: str) -> list[OpSpec] | None:
    arguments = call.arguments
    name = call.name
    if name in ("addmm", "_addmm_activation"):
        left, right = arguments["mat1"], arguments["mat2"]
    elif name in ("baddbmm", "addbmm"):
        left, right = arguments["batch1"], arguments["batch2"]
    elif name == "linear":
        left, right = arguments["input"], arguments["weight"]
    else:
        left, right = call.inputs[0], call.inputs[1]
    if len(left.shape) < 2 or len(right.shape) < 2:
        return None

    out = call.outputs[0] if call.outputs else left
    dtype = _dtype_name(out)
    if name == "linear":
        m = math.prod(left.shape[:-1])
        n, k = right.shape[0], right.shape[1]
        return [make_spec("gemm", label, phase, dtype, m=m, n=n, k=k, batch=1,
                          shared_b=False)]

    m, k = left.shape[-2], left.shape[-1]
    n = right.shape[-1]
    if name == "addbmm":
        # addbmm sums the batch of products into one matrix, but does every product.
        batch = left.shape[0]
        return [make_spec("gemm", label, phase, dtype, m=m, n=n, k=k, batch=batch,
                          shared_b=False)]
    batch = max(math.prod(left.shape[:-2]), math.prod(right.shape[:-2]), 1)
    shared_b = batch > 1 and (len(right.shape) == 2
                              or all(step == 0 for step in right.stride[:-2]))
    return [make_spec("gemm", label, phase, dtype, m=m, n=n, k=k, batch=batch,
                      shared_b=shared_b)]


def _map_attention(call: Call, label: str, phase: str) -> list[OpSpec] | None:
    query, key = call.inputs[0], call.inputs[1]
    if len(query.shape) != 4 or len(key.shape) != 4:
        return None
    causal = bool(call.arguments.get("is_causal", call.arguments.get("causal", False)))
    return [attention_spec(query.shape, key.shape, query.dtype, phase, causal=causal,
                           name=label)]


def attention_spec(query_shape: Sequence[int], key_shape: Sequence[int], dtype: str,
                   phase: str, *, causal: bool, name: str, backward: bool = False) -> OpSpec:
    """Return the spec of one fused attention launch from query [batch, heads, query_len,
    head_dim] and key [batch, kv_heads, key_len, head_dim] shapes."""
    batch, heads, query_len, head_dim = query_shape
    kv_heads, key_len = key_shape[1], key_shape[2]
    return make_spec("attention_backward" if backward else "attention", name, phase,
                     dtype if dtype in ops.DTYPE_BYTES else "fp32", batch=batch,
                     heads=heads, kv_heads=kv_heads, query_len=query_len,
                     key_len=key_len, head_dim=head_dim, causal=causal)


def _spatial(value: Any, dims: int, default: int) -> list[int]:
    if value is None:
        return [default] * dims
    if isinstance(value, int):
        return [value] * dims
    values = list(value)
    if len(values) == 1:
        return values * dims
    return values


class ConvolutionShape(NamedTuple):
    """A convolution call reduced to the arguments of `ops.convolution`."""

    batch: int
    in_channels: int
    out_channels: int
    height: int
    width: int
    kernel_h: int
    kernel_w: int
    stride: int
    padding: int
    groups: int


def convolution_shape(input_shape: Sequence[int], weight_shape: Sequence[int],
                      stride: Any, padding: Any, dilation: Any, groups: int,
                      transposed: bool) -> ConvolutionShape | None:
    """Reduce a 1-D or 2-D convolution to the square stride and padding the factory takes.

    A transposed convolution is priced as the forward convolution whose input gradient
    it computes, which has the same FLOPs. A call with unequal strides or paddings, or a
    dilation, becomes an equivalent stride-1, unpadded convolution over an input sized
    to give the same output, so its FLOPs are exact and its input bytes approximate.
    Returns None for other ranks.
    """
    dims = len(input_shape) - 2
    if dims not in (1, 2) or len(weight_shape) != dims + 2:
        return None
    strides = _spatial(stride, dims, 1)
    paddings = _spatial(padding, dims, 0)
    dilations = _spatial(dilation, dims, 1)
    sizes = list(input_shape[2:])
    kernel = list(weight_shape[2:])
    batch = input_shape[0]
    if transposed:
        # weight is [in_channels, out_channels / groups, *kernel].
        in_channels = weight_shape[1] * groups
        out_channels = input_shape[1]
        sizes = [(size - 1) * step - 2 * pad + dil * (k - 1) + 1
                 for size, step, pad, dil, k in zip(sizes, strides, paddings, dilations, kernel)]
    else:
        in_channels = input_shape[1]
        out_channels = weight_shape[0]
    if dims == 1:
        sizes, kernel = [1] + sizes, [1] + kernel
        strides, paddings, dilations = [1] + strides, [0] + paddings, [1] + dilations
    uniform = strides[0] == strides[1] and paddings[0] == paddings[1]
    if uniform and dims == 1:
        # A 1-D convolution has stride 1 and no padding along the added height axis.
        uniform = strides[1] == 1 and paddings[1] == 0
    if uniform and all(d == 1 for d in dilations):
        return ConvolutionShape(batch, in_channels, out_channels, sizes[0], sizes[1],
                                kernel[0], kernel[1], strides[0], paddings[0], groups)
    outputs = [(size + 2 * pad - dil * (k - 1) - 1) // step + 1
               for size, step, pad, dil, k in zip(sizes, strides, paddings, dilations, kernel)]
    equivalent = [out + k - 1 for out, k in zip(outputs, kernel)]
    return ConvolutionShape(batch, in_channels, out_channels, equivalent[0], equivalent[1],
                            kernel[0], kernel[1], 1, 0, groups)


def _convolution_spec(shape: ConvolutionShape, label: str, phase: str, dtype: str) -> OpSpec:
    return make_spec("convolution", label, phase, dtype, **shape._asdict())


def _map_convolution(call: Call, label: str, phase: str) -> list[OpSpec] | None:
    arguments = call.arguments
    data = arguments.get("input", arguments.get("self"))
    weight = arguments["weight"]
    shape = convolution_shape(data.shape, weight.shape, arguments.get("stride"),
                              arguments.get("padding"), arguments.get("dilation"),
                              int(arguments.get("groups", 1)),
                              bool(arguments.get("transposed", False)))
    if shape is None:
        return None
    out = call.outputs[0]
    return [_convolution_spec(shape, label, phase, _dtype_name(out))]


def _map_convolution_backward(call: Call, label: str, phase: str) -> list[OpSpec] | None:
    """Map a convolution backward call. The input and the weight gradient each cost one
    forward convolution, and the bias gradient is a reduction over the output gradient."""
    arguments = call.arguments
    gradient, data, weight = arguments["grad_output"], arguments["input"], arguments["weight"]
    shape = convolution_shape(data.shape, weight.shape, arguments.get("stride"),
                              arguments.get("padding"), arguments.get("dilation"),
                              int(arguments.get("groups", 1)),
                              bool(arguments.get("transposed", False)))
    if shape is None:
        return None
    mask = arguments.get("output_mask") or [True, True, True]
    dtype = _dtype_name(gradient)
    specs = []
    if mask[0]:
        specs.append(_convolution_spec(shape, f"{label}(input)", phase, dtype))
    if mask[1]:
        specs.append(_convolution_spec(shape, f"{label}(weight)", phase, dtype))
    if len(mask) > 2 and mask[2] and len(call.outputs) >= 1:
        bias = call.outputs[-1]
        specs += _memory_spec(f"{label}(bias)", phase, OpClass.REDUCTION, [gradient, bias],
                              [gradient.stored_bytes], [bias])
    return specs


def _dtype_name(tensor: TensorInfo) -> str:
    return tensor.dtype if tensor.dtype in ops.DTYPE_BYTES else "fp32"


def _map_foreach(call: Call, phase: str) -> list[OpSpec]:
    """Split a _foreach_* call into the launches multi_tensor_apply makes.

    Every tensor list is read. An in-place call writes its first list, and any other call
    writes a new list of the same sizes. Each launch becomes one elementwise op over the
    elements it covers.
    """
    lists = [value for value in call.arguments.values()
             if isinstance(value, list) and value and isinstance(value[0], TensorInfo)]
    if not lists or all(t.device != "meta" for t in lists[0]):
        return []
    first = lists[0]
    depth = len(lists) + (0 if call.inplace else 1)
    max_tensors = FOREACH_MAX_TENSORS[min(depth, len(FOREACH_MAX_TENSORS)) - 1]
    label = f"aten::{call.name}"
    dtype = _dtype_name(first[0])
    size = ops.dtype_bytes(dtype)
    specs = []
    for elements in foreach_launches([t.numel for t in first], max_tensors):
        read_bytes = tuple(elements * size for _ in lists)
        write_bytes = (elements * size,)
        specs.append(make_spec("memory", label, phase, dtype,
                               op_class=OpClass.ELEMENTWISE.value,
                               sized_elements=(elements,),
                               read_bytes=read_bytes, write_bytes=write_bytes,
                               flops_per_element=FLOPS_PER_ELEMENT[OpClass.ELEMENTWISE]))
    return specs


def foreach_launches(sizes: Sequence[int], max_tensors: int) -> list[int]:
    """Return the elements each multi_tensor_apply launch covers for tensors of `sizes`.

    A launch is issued when its block table (FOREACH_MAX_BLOCKS chunks) or its tensor
    table (`max_tensors`) is full, and once more for whatever is left at the end. A
    tensor whose chunks span two launches starts the next one.
    """
    launches = []
    tensors = blocks = covered = 0
    for size in sizes:
        if size == 0:
            continue
        chunks = -(-size // FOREACH_CHUNK_ELEMENTS)
        tensors += 1
        done = 0
        while done < chunks:
            take = min(chunks - done, FOREACH_MAX_BLOCKS - blocks)
            blocks += take
            done += take
            covered += min(size, done * FOREACH_CHUNK_ELEMENTS) - min(
                size, (done - take) * FOREACH_CHUNK_ELEMENTS)
            if blocks == FOREACH_MAX_BLOCKS or (done == chunks and tensors == max_tensors):
                launches.append(covered)
                covered = blocks = 0
                tensors = 1 if done < chunks else 0
    if covered:
        launches.append(covered)
    return launches
