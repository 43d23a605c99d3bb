"""Batch prediction, corrections, clock scaling and module activities."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest

from energaizer.analyze.opclass import OpClass
from energaizer.hardware.profiles import load_profile
from energaizer.perf import (
    MODULES,
    Corrections,
    analytical_phases,
    clear_cache,
    predict_op,
    predict_ops,
)
from energaizer.workload.ops import (
    attention,
    collective,
    convolution,
    copy,
    fill,
    gemm,
    memory_bound,
)

GPU_IDS = ("a100-pcie-40gb", "h100-sxm5-80gb", "v100-sxm2-16gb", "t4", "p100-pcie-16gb",
           "l4", "b200")


def mixed_ops():
    return [
        gemm(4096, 4096, 4096, "bf16"),
        gemm(1, 4096, 4096, "fp16"),
        gemm(64, 64, 65536, "fp16"),
        gemm(512, 1024, 256, "fp32", batch=12),
        gemm(2048, 2048, 2048, "fp8"),
        convolution(16, 64, 128, 56, 56, 3, 3, "fp16", padding=1),
        attention(4, 16, 2048, 2048, 64, "bf16", causal=True),
        attention(16, 32, 1, 8192, 128, "fp16", kv_heads=8),
        memory_bound(OpClass.SOFTMAX, 1 << 24, "bf16"),
        memory_bound(OpClass.NORMALIZATION, 1 << 22, "bf16"),
        memory_bound(OpClass.ELEMENTWISE, 10, "fp32", name="silu"),
        memory_bound(OpClass.OTHER, 1 << 20, "fp32"),
        copy(1 << 24, kind="host"),
        copy(1 << 24),
        fill(4096),
        collective("all_gather", 1 << 26, 4),
    ]


@pytest.mark.parametrize("gpu_id", GPU_IDS)
def test_activities_within_unit_interval(gpu_id):
    table = predict_ops(mixed_ops(), load_profile(gpu_id))
    assert tuple(table.activity) == MODULES
    for module, shares in table.activity.items():
        assert np.all(shares >= 0.0), module
        assert np.all(shares <= 1.0), module
    assert np.all(table.time_s > 0)
    assert set(table.bound) <= {"compute", "memory", "latency", "link"}


def test_predict_ops_matches_predict_op(a100):
    ops = mixed_ops()
    table = predict_ops(ops, a100, clock_mhz=1200)
    for index, op in enumerate(ops):
        single = predict_op(op, a100, clock_mhz=1200)
        assert table.time_s[index] == single.time_s, op.name
        assert table.prologue_s[index] == single.prologue_s, op.name
        assert table.main_s[index] == single.main_s, op.name
        assert table.epilogue_s[index] == single.epilogue_s, op.name
        assert table.bound[index] == single.bound, op.name
        for module in MODULES:
            assert table.activity[module][index] == single.activity[module], (op.name, module)


def test_cached_prediction_equals_fresh(a100):
    op = gemm(3000, 5000, 700, "bf16")
    clear_cache()
    fresh = predict_op(op, a100)
    cached = predict_op(op, a100)
    assert cached == fresh


def test_corrections_applied(a100):
    op = gemm(2048, 2048, 2048, "bf16")
    base = predict_op(op, a100)
    corrections = {OpClass.GEMM: Corrections(prologue=2.0, main=0.5, epilogue=3.0,
                                             fixed_s=1e-5)}
    corrected = predict_op(op, a100, corrections=corrections)
    expected_s = (2.0 * base.prologue_s + 0.5 * base.main_s + 3.0 * base.epilogue_s
                  + 1e-5)
    assert corrected.time_s == pytest.approx(expected_s, rel=1e-12)
    assert corrected.main_s == base.main_s
    # Busy work is unchanged, so activity scales with 1 / time.
    ratio = base.time_s / corrected.time_s
    assert corrected.activity["tensor"] == pytest.approx(base.activity["tensor"] * ratio)


def test_corrections_default_for_missing_class(a100):
    op = memory_bound(OpClass.SOFTMAX, 1 << 20, "bf16")
    corrections = {OpClass.GEMM: Corrections(main=5.0)}
    assert predict_op(op, a100, corrections=corrections) == predict_op(op, a100)


def test_analytical_phases_fit_times(a100):
    ops = mixed_ops()
    corrections = Corrections(prologue=1.5, main=1.1, epilogue=0.7, fixed_s=3e-6)
    table = predict_ops(ops, a100, corrections={cls: corrections for cls in OpClass})
    phases = analytical_phases(ops, a100)
    assert phases.shape == (len(ops), 4)
    assert np.all(phases[:, 3] == 1.0)
    np.testing.assert_allclose(phases @ np.array(corrections.as_tuple()), table.time_s)


def test_compute_bound_gemm_scales_with_clock(a100):
    op = gemm(8192, 8192, 8192, "bf16")
    fast = predict_op(op, a100, clock_mhz=1410)
    slow = predict_op(op, a100, clock_mhz=705)
    assert slow.time_s / fast.time_s == pytest.approx(2.0, rel=0.03)


def test_dram_bound_op_ignores_clock(a100):
    op = memory_bound(OpClass.ELEMENTWISE, 1 << 28, "fp32")
    fast = predict_op(op, a100, clock_mhz=1410)
    slow = predict_op(op, a100, clock_mhz=705)
    assert slow.time_s == pytest.approx(fast.time_s, rel=0.01)
    assert slow.activity["dram"] == pytest.approx(fast.activity["dram"], rel=0.01)


def test_default_clock_is_boost(a100):
    op = gemm(1024, 1024, 1024, "bf16")
    assert predict_op(op, a100) == predict_op(op, a100, clock_mhz=a100.boost_clock_mhz)


@pytest.mark.parametrize("clock_mhz", [0, -100, float("nan")])
def test_invalid_clock_raises(a100, clock_mhz):
    with pytest.raises(ValueError, match="Invalid clock_mhz"):
        predict_op(gemm(64, 64, 64, "bf16"), a100, clock_mhz=clock_mhz)


def test_corrections_round_trip():
    corrections = Corrections(prologue=0.5, main=1.2, epilogue=0.0, fixed_s=4e-6)
    assert Corrections.from_dict(corrections.to_dict()) == corrections
    assert Corrections.from_dict({}) == Corrections.default()
    assert Corrections.default().as_tuple() == (1.0, 1.0, 1.0, 2.0e-6)


@pytest.mark.parametrize("field", ["prologue", "main", "epilogue", "fixed_s"])
def test_negative_correction_raises(field):
    with pytest.raises(ValueError, match=f"Invalid correction {field}"):
        Corrections(**{field: -0.1})


def test_unknown_correction_key_raises():
    with pytest.raises(ValueError, match="Unknown correction keys"):
        Corrections.from_dict({"main": 1.0, "l5": 2.0})


def test_empty_op_list(a100):
    table = predict_ops([], a100)
    assert table.time_s.shape == (0,)
    assert table.bound == []
    assert analytical_phases([], a100).shape == (0, 4)


def test_two_thousand_distinct_ops_are_fast(a100):
    # Cold cache, ~2000 distinct shapes repeated 5 times: the estimate path must stay
    # interactive. The bound is loose so that a slow CI machine still passes.
    rng = random.Random(7)
    ops = []
    for index in range(2000):
        if index % 3 == 0:
            ops.append(gemm(rng.randint(1, 8192), rng.randint(1, 8192),
                            rng.randint(1, 8192), "bf16"))
        elif index % 9 == 1:
            ops.append(attention(rng.randint(1, 16), 32, rng.choice([1, 1024]),
                                 rng.randint(1, 8192), 128, "bf16", causal=True))
        else:
            ops.append(memory_bound(OpClass.ELEMENTWISE, rng.randint(1, 1 << 26), "bf16"))
    clear_cache()
    start = time.perf_counter()
    table = predict_ops(ops * 5, a100)
    elapsed_s = time.perf_counter() - start
    assert len(table.time_s) == 10000
    assert elapsed_s < 1.0
