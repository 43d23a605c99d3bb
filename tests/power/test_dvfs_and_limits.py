"""Voltage and idle curves, the launch pipeline, and power capping."""

from __future__ import annotations

import numpy as np
import pytest

from energaizer.analyze.opclass import OpClass
from energaizer.calibrate.profile import Calibration
from energaizer.hardware.profiles import load_profile
from energaizer.perf import Corrections
from energaizer.power.coefficients import PowerCoefficients, headroom_defaults
from energaizer.power.dvfs import dvfs_curves
from energaizer.power.pipeline import gpu_schedule
from energaizer.power.simulate import simulate_workload
from energaizer.workload import ops
from energaizer.workload.workload import Workload


@pytest.mark.parametrize("gpu", ["a100-pcie-40gb", "h100-sxm5-80gb", "t4", "l4"])
def test_curves_monotone_and_anchored(gpu):
    profile = load_profile(gpu)
    curves = dvfs_curves(profile)
    clocks = np.linspace(0.3, 1.0, 30) * profile.boost_clock_mhz
    voltages = [curves.relative_voltage(c) for c in clocks]
    idles = [curves.idle_power_w(c) for c in clocks]
    assert voltages[-1] == pytest.approx(1.0)
    assert all(b >= a - 1e-12 for a, b in zip(voltages, voltages[1:]))
    assert all(b >= a - 1e-9 for a, b in zip(idles, idles[1:]))
    assert curves.dynamic_scale(profile.boost_clock_mhz) == pytest.approx(1.0)


def test_default_curve_scaled_to_profile_idle():
    profile = load_profile("l4")
    curves = dvfs_curves(profile)
    assert curves.idle_power_w(profile.boost_clock_mhz) == pytest.approx(profile.idle_power_w)
    assert "default" in curves.source


def test_fitted_table_used_where_shipped():
    curves = dvfs_curves(load_profile("a100-pcie-40gb"))
    assert "ISPASS" in curves.source
    assert curves.idle_power_w(1410) == pytest.approx(66.0, abs=3.0)
    assert curves.idle_power_w(510) < curves.idle_power_w(1410) - 15


def test_pipeline_gpu_bound_and_cpu_bound():
    starts, total = gpu_schedule(np.array([10.0, 10.0, 10.0]), 1.0)
    assert total == pytest.approx(30.0)
    assert starts.tolist() == [0.0, 10.0, 20.0]
    starts, total = gpu_schedule(np.array([1.0, 1.0, 1.0]), 5.0)
    assert total == pytest.approx(11.0)
    assert starts.tolist() == [0.0, 5.0, 10.0]


def _heavy_gemm() -> Workload:
    return Workload("gemms", [ops.gemm(8192, 8192, 8192, "bf16")] * 10, eager_launches=False)


def _calibration(profile) -> Calibration:
    corrections = {c: Corrections() for c in OpClass}
    return Calibration(profile.id, headroom_defaults(profile.power_limit_w, profile.idle_power_w),
                       corrections, 10e-6, kind="default")


def test_power_limit_lowers_clock_and_stretches_time():
    profile = load_profile("a100-pcie-40gb")
    calibration = _calibration(profile)
    free = simulate_workload(_heavy_gemm(), profile, calibration)
    capped = simulate_workload(_heavy_gemm(), profile, calibration, power_limit_w=150)
    assert capped.throttled
    assert capped.avg_power_w <= 150 + 1e-6
    assert capped.clock_mhz < free.clock_mhz
    assert capped.duration_s > free.duration_s * 1.1
    assert any("lowered" in note for note in capped.notes)


def test_limit_above_profile_limit_is_the_profile_limit():
    profile = load_profile("a100-pcie-40gb")
    run = simulate_workload(_heavy_gemm(), profile, _calibration(profile), power_limit_w=10_000)
    assert run.power_limit_w == profile.power_limit_w
    assert run.avg_power_w <= profile.power_limit_w + 1e-6


def test_lower_clock_lowers_power_of_compute_bound_work():
    profile = load_profile("a100-pcie-40gb")
    calibration = _calibration(profile)
    fast = simulate_workload(_heavy_gemm(), profile, calibration, clock_mhz=1410)
    slow = simulate_workload(_heavy_gemm(), profile, calibration, clock_mhz=705)
    assert slow.avg_power_w < fast.avg_power_w
    assert slow.duration_s == pytest.approx(fast.duration_s * 2, rel=0.15)


def test_coefficients_reject_negative_and_unknown():
    with pytest.raises(ValueError, match="negative"):
        PowerCoefficients({"dram": -1.0})
    with pytest.raises(ValueError, match="Unknown"):
        PowerCoefficients({"hbm": 1.0})
