"""Streaming ops, copies and fills in the memory model."""

from __future__ import annotations

import pytest

from energaizer.analyze.opclass import OpClass
from energaizer.perf import predict_op
from energaizer.perf.clock import DRAM_EFFICIENCY
from energaizer.perf.memory import HOST_COPY_LATENCY_S, PCIE_EFFICIENCY
from energaizer.workload.ops import copy, fill, memory_bound

GIB = 1 << 30


def test_elementwise_gib_takes_bytes_over_bandwidth(a100):
    op = memory_bound(OpClass.ELEMENTWISE, GIB // 4, "fp32", reads=0.5, writes=0.5)
    prediction = predict_op(op, a100)
    expected_s = GIB / (a100.memory_bandwidth_b_s * DRAM_EFFICIENCY)
    assert op.bytes == GIB
    assert prediction.time_s == pytest.approx(expected_s, rel=0.03)
    assert prediction.bound == "memory"
    assert prediction.activity["dram"] == pytest.approx(DRAM_EFFICIENCY, rel=0.03)
    assert prediction.tiles is None


def test_tiny_op_is_latency_bound(a100):
    prediction = predict_op(memory_bound(OpClass.ELEMENTWISE, 256, "fp32"), a100)
    assert prediction.bound == "latency"
    assert 2e-6 <= prediction.time_s <= 4e-6


def test_l2_resident_op_costs_less(a100):
    # 8 MB fits in the 40 MB L2, so it moves faster than the DRAM rate.
    small = memory_bound(OpClass.ELEMENTWISE, 1 << 20, "fp32", reads=1, writes=1)
    prediction = predict_op(small, a100)
    dram_s = small.bytes / (a100.memory_bandwidth_b_s * DRAM_EFFICIENCY)
    assert prediction.main_s < 0.75 * dram_s


def test_softmax_uses_sfu(a100):
    prediction = predict_op(memory_bound(OpClass.SOFTMAX, 1 << 26, "bf16"), a100)
    assert prediction.activity["sfu"] > 0.05
    assert prediction.bound == "memory"


def test_transcendental_elementwise_uses_sfu(a100):
    gelu = predict_op(memory_bound(OpClass.ELEMENTWISE, 1 << 26, "bf16", name="gelu"), a100)
    add = predict_op(memory_bound(OpClass.ELEMENTWISE, 1 << 26, "bf16", name="add"), a100)
    assert gelu.activity["sfu"] > 0.0
    assert add.activity["sfu"] == 0.0


def test_integer_dtype_is_priced(a100):
    prediction = predict_op(memory_bound(OpClass.EMBEDDING, 1 << 20, "int64"), a100)
    assert prediction.time_s > 0


def test_device_copy_reads_and_writes(a100):
    prediction = predict_op(copy(GIB), a100)
    expected_s = 2 * GIB / (a100.memory_bandwidth_b_s * DRAM_EFFICIENCY)
    assert prediction.time_s == pytest.approx(expected_s, rel=0.03)
    assert prediction.bound == "memory"


def test_host_copy_uses_one_pcie_direction(a100):
    prediction = predict_op(copy(GIB, kind="host"), a100)
    link_b_s = a100.pcie_gb_s / 2 * 1e9 * PCIE_EFFICIENCY
    assert prediction.main_s == pytest.approx(GIB / link_b_s)
    assert prediction.prologue_s == HOST_COPY_LATENCY_S
    assert prediction.bound == "link"


def test_memset_writes_once(a100):
    prediction = predict_op(fill(GIB), a100)
    expected_s = GIB / (a100.memory_bandwidth_b_s * DRAM_EFFICIENCY)
    assert prediction.time_s == pytest.approx(expected_s, rel=0.03)
