"""The simulated GPU: counter steps, averaged power lag, resets and injected faults."""

from __future__ import annotations

import pytest

from energaizer.hardware.nvml import (
    NvmlNoPermissionError,
    NvmlNotReadyError,
    NvmlNotSupportedError,
)
from energaizer.hardware.simulated import ManualClock, SimulatedGpu


def test_counter_steps_every_period():
    clock = ManualClock()
    gpu = SimulatedGpu(clock, idle_power_w=150.0, counter_period_s=0.01)
    clock.advance(0.009)
    assert gpu.total_energy_j() == 0.0
    clock.advance(0.002)
    assert gpu.total_energy_j() == pytest.approx(1.5)


def test_power_function_of_activity():
    gpu = SimulatedGpu(ManualClock(), idle_power_w=50.0, coefficients={"tensor": 200.0,
                                                                        "dram": 100.0})
    assert gpu.set_activity({"tensor": 0.5, "dram": 0.2}) == pytest.approx(170.0)
    assert gpu.power_instant_w() == pytest.approx(170.0)


def test_average_power_lags_one_second():
    clock = ManualClock()
    gpu = SimulatedGpu(clock, idle_power_w=60.0)
    clock.advance(5.0)
    gpu.set_power(400.0)
    clock.advance(0.3)
    assert gpu.power_average_w() == pytest.approx(60.0 * 0.7 + 400.0 * 0.3)
    assert gpu.power_instant_w() == pytest.approx(400.0)


def test_reset_restarts_counter():
    clock = ManualClock()
    gpu = SimulatedGpu(clock, idle_power_w=100.0)
    clock.advance(1.0)
    assert gpu.total_energy_j() == pytest.approx(100.0)
    gpu.reset_counter()
    assert gpu.total_energy_j() == pytest.approx(0.0)
    clock.advance(0.5)
    assert gpu.total_energy_j() == pytest.approx(50.0)


def test_faults_and_unsupported_queries():
    gpu = SimulatedGpu(ManualClock(), unsupported={"energy"},
                       faults={"power_instant": [27, "N/A"]})
    with pytest.raises(NvmlNotSupportedError):
        gpu.total_energy_j()
    with pytest.raises(NvmlNotReadyError):
        gpu.power_instant_w()
    assert gpu.power_instant_w() == "N/A"
    assert gpu.power_instant_w() == pytest.approx(60.0)


def test_lock_clocks_needs_permission():
    gpu = SimulatedGpu(ManualClock())
    with pytest.raises(NvmlNoPermissionError):
        gpu.lock_sm_clocks(1000, 1000)
    allowed = SimulatedGpu(ManualClock(), can_lock_clocks=True)
    allowed.lock_sm_clocks(1000, 1000)
    assert allowed.sm_clock_mhz() == 1000.0
    allowed.reset_sm_clocks()
    assert allowed.sm_clock_mhz() == 1410.0
