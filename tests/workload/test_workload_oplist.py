"""Op-list files: the shipped example, every op class, and strict validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from energaizer.analyze.opclass import OpClass
from energaizer.errors import InputError
from energaizer.workload.oplist import load_op_list, parse_op_list

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "workloads" / "llama-layer.json"


def test_example_llama_layer_loads():
    workload = load_op_list(EXAMPLE)
    classes = [op.op_class for op in workload.ops]
    assert classes.count(OpClass.GEMM) == 6
    assert classes.count(OpClass.ATTENTION) == 1
    assert workload.launches == 14
    assert workload.eager_launches is True
    assert workload.source["kind"] == "op_list"


def test_example_llama_layer_flops():
    workload = load_op_list(EXAMPLE)
    tokens, hidden, kv, mlp = 2048, 4096, 1024, 14336
    weights = hidden * hidden * 2 + hidden * kv * 2 + hidden * mlp * 3
    attention = 4 * 32 * tokens * tokens * 128 * 0.5
    gemm_flops = sum(op.flops * op.count for op in workload.ops if op.op_class is OpClass.GEMM)
    assert gemm_flops == 2 * tokens * weights
    (fused,) = [op for op in workload.ops if op.op_class is OpClass.ATTENTION]
    assert fused.flops == attention
    assert fused.geometry["kv_heads"] == 8


def test_every_op_class_parses():
    entries = [
        {"op_class": "gemm", "m": 64, "n": 64, "k": 64, "dtype": "bf16", "batch": 2},
        {"op_class": "attention", "batch": 1, "heads": 8, "query_len": 16, "key_len": 16,
         "head_dim": 64, "causal": True, "dtype": "fp16"},
        {"op_class": "convolution", "batch": 1, "in_channels": 3, "out_channels": 8,
         "height": 32, "width": 32, "kernel_h": 3, "kernel_w": 3, "padding": 1,
         "dtype": "fp32"},
        {"op_class": "elementwise", "elements": 100, "dtype": "bf16", "reads": 2},
        {"op_class": "reduction", "elements": 100, "dtype": "fp32"},
        {"op_class": "normalization", "elements": 100, "dtype": "bf16"},
        {"op_class": "softmax", "elements": 100, "dtype": "bf16"},
        {"op_class": "embedding", "elements": 100, "dtype": "bf16"},
        {"op_class": "memcpy", "bytes": 4096, "kind": "host"},
        {"op_class": "memset", "bytes": 4096},
        {"op_class": "communication", "kind": "all_reduce", "bytes": 1 << 20,
         "world_size": 8},
    ]
    workload = parse_op_list(entries)
    assert [op.op_class.value for op in workload.ops] == [
        "gemm", "attention", "convolution", "elementwise", "reduction", "normalization",
        "softmax", "embedding", "memcpy", "memset", "communication"]
    assert workload.name == "op-list"


def test_count_and_default_dtype():
    workload = parse_op_list({"dtype": "fp16", "ops": [
        {"op_class": "gemm", "m": 8, "n": 8, "k": 8, "count": 32}]})
    (op,) = workload.ops
    assert op.count == 32
    assert op.dtype == "fp16"
    assert workload.launches == 32


def test_file_name_is_default_name(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps([{"op_class": "memset", "bytes": 16}]))
    assert load_op_list(path).name == "tiny"


GEMM = {"op_class": "gemm", "m": 8, "n": 8, "k": 8, "dtype": "bf16"}


@pytest.mark.parametrize("ops, fragments", [
    ([{"op_class": "matmul"}], ["op 0", "op_class", "'matmul'"]),
    ([GEMM, {"op_class": "gemm", "m": 8, "n": 8, "dtype": "bf16"}], ["op 1", "missing", "k"]),
    ([dict(GEMM, m=0)], ["op 0", "'m'", "at least 1"]),
    ([dict(GEMM, n=-4)], ["op 0", "'n'", "at least 1"]),
    ([dict(GEMM, k=2.5)], ["op 0", "'k'", "integer"]),
    ([dict(GEMM, k=True)], ["op 0", "'k'", "integer"]),
    ([dict(GEMM, dtype="fp4")], ["op 0", "dtype", "'fp4'"]),
    ([dict(GEMM, count=0)], ["op 0", "'count'", "at least 1"]),
    ([dict(GEMM, heads=4)], ["op 0", "unknown field", "heads"]),
    ([{"op_class": "attention", "batch": 1, "heads": 8, "kv_heads": 3, "query_len": 4,
       "key_len": 4, "head_dim": 64, "dtype": "bf16"}], ["op 0", "kv_heads", "divide"]),
    ([{"op_class": "convolution", "batch": 1, "in_channels": 3, "out_channels": 8,
       "height": 2, "width": 2, "kernel_h": 5, "kernel_w": 5, "dtype": "bf16"}],
     ["op 0", "empty"]),
    ([{"op_class": "elementwise", "elements": 10, "dtype": "bf16", "reads": -1}],
     ["op 0", "'reads'"]),
    ([{"op_class": "memcpy", "bytes": 10, "kind": "peer"}], ["op 0", "'kind'", "peer"]),
    ([{"op_class": "communication", "kind": "all_reduce", "bytes": 10, "world_size": 0}],
     ["op 0", "'world_size'"]),
    (["gemm"], ["op 0", "JSON object"]),
])
def test_invalid_op_is_rejected(ops, fragments):
    with pytest.raises(InputError) as raised:
        parse_op_list({"ops": ops}, origin="ops.json")
    for fragment in fragments:
        assert fragment in str(raised.value)


@pytest.mark.parametrize("data, fragment", [
    ({"schema": "energaizer.workload/2", "ops": [GEMM]}, "schema"),
    ({"ops": []}, "non-empty"),
    ({"ops": [GEMM], "extra": 1}, "extra"),
    ({"ops": [GEMM], "eager_launches": "yes"}, "eager_launches"),
    ({"ops": [GEMM], "dtype": "fp12"}, "dtype"),
    (42, "JSON object"),
])
def test_invalid_top_level_is_rejected(data, fragment):
    with pytest.raises(InputError, match=fragment):
        parse_op_list(data)


def test_missing_file_is_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_op_list(tmp_path / "absent.json")


def test_malformed_json_names_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"ops": [\n  {"op_class": "gemm",,}\n]}')
    with pytest.raises(InputError, match="line 2"):
        load_op_list(path)
