"""Power integration over overlapping activities, checked against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from energaizer.power.timeline import integrate_timeline

IDLE_W = 50.0
LIMIT_W = 300.0


def test_single_activity_with_gap():
    result = integrate_timeline(np.array([0.0, 2e6]), np.array([1e6, 1e6]),
                                np.array([100.0, 200.0]), IDLE_W, LIMIT_W)
    # 1 s at 150 W, 1 s idle at 50 W, 1 s at 250 W.
    assert result.energy_j == pytest.approx(150 + 50 + 250)
    assert result.busy_s == pytest.approx(2.0)
    assert result.idle_s == pytest.approx(1.0)
    assert result.idle_energy_j == pytest.approx(50.0)
    assert result.activity_energy_j.tolist() == pytest.approx([150.0, 250.0])


def test_overlap_shares_idle_and_adds_dynamic():
    # A: 0-2 s at 100 W dynamic; B: 1-3 s at 50 W dynamic.
    result = integrate_timeline(np.array([0.0, 1e6]), np.array([2e6, 2e6]),
                                np.array([100.0, 50.0]), IDLE_W, LIMIT_W)
    expected_a = 100 * 2 + IDLE_W * 1 + IDLE_W / 2 * 1
    expected_b = 50 * 2 + IDLE_W / 2 * 1 + IDLE_W * 1
    assert result.activity_energy_j.tolist() == pytest.approx([expected_a, expected_b])
    assert result.busy_s == pytest.approx(3.0)
    assert result.energy_j == pytest.approx(IDLE_W * 3 + 100 * 2 + 50 * 2)


def test_overlap_capped_at_power_limit():
    result = integrate_timeline(np.array([0.0, 0.0]), np.array([1e6, 1e6]),
                                np.array([200.0, 200.0]), IDLE_W, LIMIT_W)
    assert result.energy_j == pytest.approx(LIMIT_W)
    assert result.capped_s == pytest.approx(1.0)
    assert result.activity_energy_j.tolist() == pytest.approx([150.0, 150.0])


def test_zero_duration_activity_adds_nothing():
    result = integrate_timeline(np.array([0.0, 5e5]), np.array([1e6, 0.0]),
                                np.array([100.0, 100.0]), IDLE_W, LIMIT_W)
    assert result.activity_energy_j[1] == 0.0
    assert result.energy_j == pytest.approx(150.0)


def test_energy_between_window():
    result = integrate_timeline(np.array([0.0]), np.array([2e6]), np.array([100.0]), IDLE_W, LIMIT_W)
    assert result.energy_between(5e5, 1.5e6) == pytest.approx(150.0)
    assert result.energy_between(1.5e6, 5e5) == 0.0


def test_empty_timeline():
    result = integrate_timeline(np.zeros(0), np.zeros(0), np.zeros(0), IDLE_W, LIMIT_W)
    assert result.energy_j == 0.0
    assert result.busy_s == 0.0


def test_random_timelines_conserve_energy():
    rng = np.random.default_rng(7)
    for _ in range(20):
        count = 200
        starts = np.sort(rng.uniform(0, 1e6, count))
        durations = rng.exponential(2e3, count)
        dynamic = rng.uniform(0, 200, count)
        result = integrate_timeline(starts, durations, dynamic, IDLE_W, LIMIT_W)
        span_s = ((starts + durations).max() - starts.min()) * 1e-6
        assert result.busy_s + result.idle_s == pytest.approx(span_s)
        assert result.energy_j == pytest.approx(result.cumulative_energy_j[-1])
        assert IDLE_W * span_s <= result.energy_j + 1e-9
        assert result.energy_j <= LIMIT_W * span_s + 1e-9
