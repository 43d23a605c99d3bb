"""Requested clocks and power limits checked against the GPU profile."""

from __future__ import annotations

import math

import pytest

from energaizer import estimate
from energaizer.errors import InputError
from energaizer.hardware.profiles import load_profile
from energaizer.power.dvfs import dvfs_curves
from energaizer.power.limits import check_operating_point, lowest_clock_mhz


@pytest.fixture(scope="module")
def a10():
    return load_profile("a10")


def test_valid_point_accepted(a10):
    check_operating_point(a10, 900.0, 120.0)
    check_operating_point(a10, None, None)
    check_operating_point(a10, a10.boost_clock_mhz, a10.power_limit_w)


@pytest.mark.parametrize("clock", [5.0, 0.05 * 1695])
def test_clock_below_range_rejected(a10, clock):
    with pytest.raises(InputError, match="below the lowest SM clock"):
        check_operating_point(a10, clock, None)


def test_clock_above_maximum_rejected(a10):
    with pytest.raises(InputError, match="above the maximum SM clock"):
        check_operating_point(a10, a10.boost_clock_mhz * 1.01, None)


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0, 0.0, True, "900"])
def test_clock_not_a_positive_number_rejected(a10, value):
    with pytest.raises(InputError, match="clock_mhz"):
        check_operating_point(a10, value, None)


def test_limit_at_idle_power_rejected(a10):
    idle_w = dvfs_curves(a10).idle_power_w(lowest_clock_mhz(a10))
    with pytest.raises(InputError, match="no clock could meet it"):
        check_operating_point(a10, None, idle_w)
    check_operating_point(a10, None, idle_w + 1.0)


def test_limit_above_profile_rejected(a10):
    with pytest.raises(InputError, match="can only lower it"):
        check_operating_point(a10, None, 5000.0)


@pytest.mark.parametrize("value", [math.nan, -5.0, False])
def test_limit_not_a_positive_number_rejected(a10, value):
    with pytest.raises(InputError, match="power_limit_w"):
        check_operating_point(a10, None, value)


def test_estimate_api_checks_limits():
    with pytest.raises(InputError, match="no clock could meet it"):
        estimate(model="gpt2", gpu="a10", power_limit_w=5)
    with pytest.raises(InputError, match="clock_mhz"):
        estimate(model="gpt2", gpu="a10", clock_mhz=True)


def test_unreachable_limit_rejected_not_clipped():
    with pytest.raises(InputError, match="cannot be met on a10"):
        estimate(model="gpt2", gpu="a10", power_limit_w=30)


def test_capping_never_raises_a_low_clock():
    low = estimate(model="gpt2", gpu="a10", clock_mhz=200)
    capped = estimate(model="gpt2", gpu="a10", clock_mhz=200, power_limit_w=150)
    assert capped.gpu.clock_mhz == pytest.approx(200)
    assert capped.energy_j == pytest.approx(low.energy_j)


def test_capped_power_stays_above_idle():
    result = estimate(model="gpt2", gpu="a10", power_limit_w=60)
    assert result.gpu.idle_power_w < result.avg_power_w <= 60 * (1 + 1e-6)
    assert result.gpu.clock_mhz < 1695


@pytest.mark.shared_data
def test_trace_on_recorded_gpu_checks_limit(shared_data):
    trace = shared_data / "traces" / "tracelens" / "h100_bert-small_infer.json.gz"
    with pytest.raises(InputError, match="no clock could meet it"):
        estimate(trace=trace, power_limit_w=5)
