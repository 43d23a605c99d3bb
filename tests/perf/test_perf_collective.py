"""Collectives over NVLink and PCIe."""

from __future__ import annotations

import pytest

from energaizer.perf import Corrections, predict_op
from energaizer.perf.collective import (
    COLLECTIVE_LAUNCH_LATENCY_S,
    COLLECTIVE_STEP_LATENCY_S,
    LINK_EFFICIENCY,
    ring_steps,
)
from energaizer.workload.ops import collective

GIB = 1 << 30
SETUP_S = Corrections().fixed_s


def test_all_reduce_over_nvlink(a100_sxm):
    op = collective("all_reduce", GIB, 8)
    prediction = predict_op(op, a100_sxm)
    link_b_s = 600 / 2 * 1e9 * LINK_EFFICIENCY
    latency_s = COLLECTIVE_LAUNCH_LATENCY_S + 2 * 7 * COLLECTIVE_STEP_LATENCY_S
    assert op.bytes == pytest.approx(2 * 7 / 8 * GIB)
    assert prediction.time_s == pytest.approx(op.bytes / link_b_s + latency_s + SETUP_S)
    assert prediction.bound == "link"
    assert prediction.activity["dram"] > prediction.activity["fp32"]
    assert prediction.activity["fp32"] > 0


def test_all_reduce_over_pcie_is_slower(a100_sxm, t4):
    op = collective("all_reduce", GIB, 8)
    assert predict_op(op, t4).time_s > 5 * predict_op(op, a100_sxm).time_s


def test_single_gpu_collective_costs_latency(a100_sxm):
    prediction = predict_op(collective("all_reduce", GIB, 1), a100_sxm)
    assert prediction.time_s == pytest.approx(COLLECTIVE_LAUNCH_LATENCY_S + SETUP_S)
    assert prediction.activity["fp32"] == 0.0
    assert prediction.activity["dram"] == 0.0


def test_ring_steps():
    assert ring_steps("all_reduce", 8) == 14
    assert ring_steps("all_gather", 8) == 7
    assert ring_steps("send_recv", 2) == 1
    assert ring_steps("all_reduce", 1) == 0
    assert ring_steps(None, 4) == 3


def test_unknown_collective_kind_raises(a100_sxm):
    op = collective("all_reduce", GIB, 8)
    op.geometry["kind"] = "gossip"
    with pytest.raises(ValueError, match="Unknown collective kind 'gossip'"):
        predict_op(op, a100_sxm)
