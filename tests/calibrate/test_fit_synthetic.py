"""The fitter recovers known power coefficients and pass times from synthetic runs."""

from __future__ import annotations

import numpy as np
import pytest

from energaizer.analyze.opclass import OpClass
from energaizer.calibrate.fit import (
    COMPUTE_CLASSES,
    PreparedRow,
    TimeFit,
    fit_power,
    fit_time,
    group_of,
)
from energaizer.calibrate.measurements import Measurement
from energaizer.calibrate.profile import Calibration
from energaizer.hardware.profiles import load_profile
from energaizer.perf import Corrections, analytical_phases
from energaizer.power.coefficients import PowerCoefficients
from energaizer.power.simulate import simulate_workload
from energaizer.workload import ops
from energaizer.workload.workload import Workload

GPU = load_profile("a100-pcie-40gb")
TRUE_POWER = PowerCoefficients({"dram": 70.0, "active": 40.0, "l2": 15.0, "smem": 10.0,
                                "tensor": 90.0, "fp32": 60.0, "sfu": 5.0})
TRUE_CORRECTIONS = {
    op_class: Corrections(prologue=1.0, main=1.15 if op_class in COMPUTE_CLASSES else 1.05,
                          epilogue=1.0, fixed_s=3e-6)
    for op_class in OpClass
}
TRUE_DISPATCH_S = 9e-6


def _workloads() -> list[Workload]:
    """Workloads that stress different modules, so every coefficient is identifiable."""
    made = []
    for scale in (1, 2, 4, 8, 16):
        size = 512 * scale
        made.append(Workload(f"gemm-bf16-{size}", [ops.gemm(size, size, 4096, "bf16")] * 20))
        made.append(Workload(f"gemm-fp32-{size}", [ops.gemm(size, size, 2048, "fp32")] * 10))
        made.append(Workload(f"stream-{size}", [
            ops.memory_bound(OpClass.ELEMENTWISE, size * 65536, "bf16") for _ in range(30)]))
        made.append(Workload(f"softmax-{size}", [
            ops.memory_bound(OpClass.SOFTMAX, size * 16384, "fp32") for _ in range(30)]))
        made.append(Workload(f"attention-{size}", [
            ops.attention(4, 16, size, size, 128, "bf16", causal=True)] * 10))
        made.append(Workload(f"mixed-{size}", [
            ops.gemm(size, 4096, 4096, "bf16"),
            ops.memory_bound(OpClass.NORMALIZATION, size * 4096, "bf16"),
            ops.memory_bound(OpClass.ELEMENTWISE, size * 4096, "bf16"),
        ] * 12))
    return made


def _true_timing() -> TimeFit:
    factors = np.array([[1.0, 1.15, 1.0, 3e-6], [1.0, 1.15, 1.0, 3e-6], [1.0, 1.05, 1.0, 3e-6]])
    return TimeFit(factors, TRUE_DISPATCH_S, 0.0, 0.0)


def _rows(clock_mhz: float = 900.0) -> list[PreparedRow]:
    truth = Calibration(GPU.id, TRUE_POWER, TRUE_CORRECTIONS, TRUE_DISPATCH_S)
    prepared = []
    for workload in _workloads():
        run = simulate_workload(workload, GPU, truth, clock_mhz)
        measurement = Measurement(workload.name, "bf16", 1, None, "forward", "default", GPU.id,
                                  clock_mhz, run.duration_s * 1e3, run.energy_j)
        phases = analytical_phases(workload.ops, GPU, clock_mhz)
        group = np.array([group_of(op) for op in workload.ops])
        calls = np.ones(len(workload.ops))
        prepared.append(PreparedRow(measurement, workload, clock_mhz, phases, group, calls,
                                    np.zeros(len(workload.ops))))
    return prepared


def test_power_coefficients_recovered():
    fitted = fit_power(_rows(), GPU, _true_timing())
    for module in ("dram", "active", "tensor", "fp32"):
        assert fitted.get(module) == pytest.approx(TRUE_POWER.get(module), rel=0.05), module


def test_power_prediction_exact_with_recovered_coefficients():
    rows = _rows()
    fitted = fit_power(rows, GPU, _true_timing())
    model = Calibration(GPU.id, fitted, TRUE_CORRECTIONS, TRUE_DISPATCH_S)
    for row in rows:
        run = simulate_workload(row.workload, GPU, model, row.clock_mhz)
        assert run.avg_power_w == pytest.approx(row.measurement.power_w, rel=0.01)


def test_pass_times_recovered():
    rows = _rows()
    timing = fit_time(rows)
    model = Calibration(GPU.id, TRUE_POWER, timing.corrections, timing.launch_s,
                        call_s=timing.call_s, module_s=timing.module_s)
    for row in rows:
        run = simulate_workload(row.workload, GPU, model, row.clock_mhz)
        assert run.duration_s == pytest.approx(row.measurement.time_s, rel=0.03)
