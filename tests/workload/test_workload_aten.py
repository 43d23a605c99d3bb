"""Mapping of single aten calls to ops, and the shape-template integer fit, without torch."""

from __future__ import annotations

import math

import pytest

from energaizer.analyze.opclass import OpClass
from energaizer.workload import aten
from energaizer.workload.aten import Call, TensorInfo, build_ops, map_call
from energaizer.workload.templates import Expression, fit_integer

BF16 = 2


def tensor(*shape: int, dtype: str = "bf16", stride: tuple[int, ...] | None = None,
           device: str = "meta") -> TensorInfo:
    if stride is None:
        stride = tuple(math.prod(shape[i + 1:]) for i in range(len(shape)))
    itemsize = {"bf16": 2, "fp32": 4, "int64": 8, "bool": 1}[dtype]
    return TensorInfo(tuple(shape), stride, dtype, itemsize, device)


def call(name: str, inputs: list[TensorInfo], outputs: list[TensorInfo],
         arguments: dict | None = None) -> Call:
    if arguments is None:
        arguments = {f"arg{i}": t for i, t in enumerate(inputs)}
    return Call(name, arguments, inputs, outputs, name.endswith("_"))


def ops_of(mapped_call: Call, phase: str = "forward", **options) -> list:
    return build_ops(map_call(mapped_call, phase, **options).specs)


def test_addmm_is_gemm_with_bias_folded():
    bias, left, right = tensor(2304), tensor(256, 768), tensor(768, 2304)
    out = tensor(256, 2304)
    arguments = {"self": bias, "mat1": left, "mat2": right}
    (op,) = ops_of(call("addmm", [bias, left, right], [out], arguments))
    assert op.op_class is OpClass.GEMM
    assert op.geometry == {"m": 256, "n": 2304, "k": 768, "batch": 1}
    assert op.flops == 2 * 256 * 2304 * 768
    assert op.phase == "forward"
    assert op.count == 1


def test_bmm_carries_batch():
    left, right, out = tensor(24, 128, 64), tensor(24, 64, 128), tensor(24, 128, 128)
    (op,) = ops_of(call("bmm", [left, right], [out]))
    assert op.geometry == {"m": 128, "n": 128, "k": 64, "batch": 24}


@pytest.mark.parametrize("name", ["view", "transpose", "expand", "slice", "empty", "detach"])
def test_metadata_ops_launch_nothing(name):
    mapped = map_call(call(name, [tensor(4, 8)], [tensor(8, 4)]), "forward")
    assert mapped.specs == []
    assert not mapped.unmapped


def test_cpu_only_call_launches_nothing():
    cpu = tensor(1, dtype="fp32", device="cpu")
    mapped = map_call(call("add_", [cpu, cpu], [cpu]), "optimizer")
    assert mapped.specs == []


def test_unknown_op_is_unmapped():
    mapped = map_call(call("frobnicate", [tensor(10, 10)], [tensor(10, 10)]), "forward")
    assert mapped.unmapped
    (op,) = build_ops(mapped.specs)
    assert op.op_class is OpClass.ELEMENTWISE
    assert op.bytes == 2 * 100 * BF16


def test_broadcast_input_counts_stored_elements():
    hidden = tensor(8, 16, 32)
    weight = tensor(8, 16, 32, stride=(0, 0, 1))  # a [32] vector expanded
    (op,) = ops_of(call("mul", [hidden, weight], [tensor(8, 16, 32)]))
    assert op.bytes == (4096 + 32 + 4096) * BF16


def test_embedding_reads_only_gathered_rows():
    table, indices = tensor(50000, 64), tensor(2, 10, dtype="int64")
    (op,) = ops_of(call("embedding", [table, indices], [tensor(2, 10, 64)]))
    assert op.op_class is OpClass.EMBEDDING
    assert op.bytes == (20 * 64 * BF16) + (20 * 8) + (20 * 64 * BF16)


def test_contiguous_clone_is_device_memcpy():
    (op,) = ops_of(call("clone", [tensor(4, 8)], [tensor(4, 8)]))
    assert op.op_class is OpClass.MEMCPY
    assert op.geometry == {"bytes": 64, "kind": "device"}


def test_dtype_cast_is_elementwise():
    (op,) = ops_of(call("_to_copy", [tensor(4, 8)], [tensor(4, 8, dtype="fp32")]))
    assert op.op_class is OpClass.ELEMENTWISE
    assert op.dtype == "fp32"
    assert op.bytes == 32 * BF16 + 32 * 4


def test_zeros_is_memset():
    (op,) = ops_of(call("zeros", [], [tensor(16, 16)]))
    assert op.op_class is OpClass.MEMSET
    assert op.bytes == 256 * BF16


def test_norm_module_pieces_are_normalization():
    (op,) = ops_of(call("pow", [tensor(4, 64)], [tensor(4, 64)]), in_normalization=True)
    assert op.op_class is OpClass.NORMALIZATION


@pytest.mark.parametrize("name, expected", [
    ("native_layer_norm", OpClass.NORMALIZATION),
    ("_safe_softmax", OpClass.SOFTMAX),
    ("_log_softmax_backward_data", OpClass.SOFTMAX),
    ("mean", OpClass.REDUCTION),
    ("nll_loss_forward", OpClass.REDUCTION),
    ("gelu_backward", OpClass.ELEMENTWISE),
    ("embedding_dense_backward", OpClass.EMBEDDING),
])
def test_op_class_by_name(name, expected):
    (op,) = ops_of(call(name, [tensor(4, 64)], [tensor(4, 64)]))
    assert op.op_class is expected


def test_convolution_uses_stride_and_padding():
    image, weight = tensor(2, 3, 224, 224), tensor(64, 3, 7, 7)
    arguments = {"input": image, "weight": weight, "bias": None, "stride": [2, 2],
                 "padding": [3, 3], "dilation": [1, 1], "transposed": False,
                 "output_padding": [0, 0], "groups": 1}
    (op,) = ops_of(call("convolution", [image, weight], [tensor(2, 64, 112, 112)],
                        arguments))
    assert op.op_class is OpClass.CONVOLUTION
    assert (op.geometry["out_h"], op.geometry["out_w"]) == (112, 112)
    assert op.flops == 2 * 2 * 112 * 112 * 64 * 3 * 49


def test_dilated_convolution_keeps_exact_flops():
    shape = aten.convolution_shape((1, 8, 32, 32), (8, 8, 3, 3), [1, 1], [2, 2], [2, 2], 1,
                                   False)
    (op,) = build_ops([aten._convolution_spec(shape, "conv", "forward", "bf16")])
    assert (op.geometry["out_h"], op.geometry["out_w"]) == (32, 32)
    assert op.flops == 2 * 32 * 32 * 8 * 8 * 9


def test_convolution_backward_launches():
    gradient, image, weight = tensor(2, 64, 56, 56), tensor(2, 64, 56, 56), tensor(64, 64, 3, 3)
    arguments = {"grad_output": gradient, "input": image, "weight": weight,
                 "bias_sizes": [64], "stride": [1, 1], "padding": [1, 1],
                 "dilation": [1, 1], "transposed": False, "output_padding": [0, 0],
                 "groups": 1, "output_mask": [True, True, True]}
    outputs = [tensor(2, 64, 56, 56), tensor(64, 64, 3, 3), tensor(64)]
    built = ops_of(call("convolution_backward", [gradient, image, weight], outputs,
                        arguments), "backward")
    assert [op.op_class for op in built] == [OpClass.CONVOLUTION, OpClass.CONVOLUTION,
                                             OpClass.REDUCTION]
    assert built[0].flops == built[1].flops == 2 * 2 * 56 * 56 * 64 * 64 * 9


def test_attention_backward_scales_forward():
    forward, backward = build_ops([
        aten.attention_spec((1, 8, 128, 64), (1, 2, 128, 64), "bf16", "forward",
                            causal=True, name="attention"),
        aten.attention_spec((1, 8, 128, 64), (1, 2, 128, 64), "bf16", "backward",
                            causal=True, name="attention_backward", backward=True),
    ])
    assert forward.geometry["kv_heads"] == 2
    assert backward.flops == pytest.approx(2.5 * forward.flops)
    assert backward.bytes == pytest.approx(2 * forward.bytes)


@pytest.mark.parametrize("sizes, max_tensors, expected", [
    ([320 * 65536], 110, [320 * 65536]),
    ([321 * 65536], 110, [320 * 65536, 65536]),
    ([10] * 111, 110, [1100, 10]),
    ([65536 * 200, 65536 * 200], 36, [65536 * 320, 65536 * 80]),
    ([0, 5], 110, [5]),
])
def test_foreach_launch_split(sizes, max_tensors, expected):
    assert aten.foreach_launches(sizes, max_tensors) == expected


def test_foreach_call_covers_every_element():
    params = [tensor(4096, 4096) for _ in range(3)]
    grads = [tensor(4096, 4096) for _ in range(3)]
    arguments = {"self": params, "other": grads}
    built = ops_of(call("_foreach_add_", params + grads, [], arguments), "optimizer")
    assert sum(op.geometry["elements"] for op in built) == 3 * 4096 * 4096
    assert all(op.geometry["reads"] == 2 and op.geometry["writes"] == 1 for op in built)


def test_build_ops_gives_each_launch_its_own_op():
    spec = aten.make_spec("gemm", "mm", "forward", "bf16", m=8, n=8, k=8, batch=1,
                          shared_b=False)
    first, second = build_ops([spec, spec])
    assert first == second
    assert first is not second
    assert first.geometry is not second.geometry


PROBES = [(13, 1031), (17, 1033)]


@pytest.mark.parametrize("expression", [
    Expression(768, 0, 0, 0),
    Expression(768, 1, 1, 0),
    Expression(12, 1, 2, 0),
    Expression(2048, 1, 1, 1),
    Expression(3, 0, 1, -1),
    Expression(5, 2, 0, 0),
])
def test_fit_integer_recovers_expression(expression):
    first = expression.evaluate(*PROBES[0])
    second = expression.evaluate(*PROBES[1])
    assert fit_integer(first, second, PROBES) == expression


def test_fit_integer_rejects_non_monomial():
    # batch * seq + 1 is no product of powers.
    assert fit_integer(13 * 1031 + 1, 17 * 1033 + 1, PROBES) is None


def test_three_d_convolution_is_unmapped():
    volume, weight = tensor(1, 4, 8, 8, 8), tensor(4, 4, 3, 3, 3)
    arguments = {"input": volume, "weight": weight, "bias": None, "stride": [1, 1, 1],
                 "padding": [1, 1, 1], "dilation": [1, 1, 1], "transposed": False,
                 "output_padding": [0, 0, 0], "groups": 1}
    mapped = map_call(call("convolution", [volume, weight], [tensor(1, 4, 8, 8, 8)],
                           arguments), "forward")
    assert mapped.unmapped
    (op,) = build_ops(mapped.specs)
    assert op.op_class is OpClass.ELEMENTWISE
