"""Measurement failure kinds: missing counter or telemetry, transient errors, MIG,
averaged power, disagreeing methods, fast polling and overlapping scopes."""

from __future__ import annotations

import itertools
import random
import warnings

import pytest

from energaizer.hardware.devices import MigSplit, ResolvedDevice
from energaizer.hardware.simulated import ManualClock, SimulatedGpu, SimulatedNvml
from energaizer.measure import Meter
from energaizer.measure.account import account_gpu
from energaizer.measure.energy import ScopedReading, add_disjoint, integrate_power
from energaizer.measure.sampler import DeviceSamples, Sample, as_reading


def _meter(gpus, clock, interval_s, **options) -> Meter:
    return Meter(backend=SimulatedNvml(gpus, mig=options.pop("mig", None)), clock=clock,
                 threaded=False, interval_s=interval_s, **options)


def _run(meter: Meter, seconds: float):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with meter:
            meter.sampler.run_for(seconds)
    return meter.result


def test_no_counter_integrates_power():
    clock = ManualClock()
    gpu = SimulatedGpu(clock, idle_power_w=150.0, unsupported={"energy"})
    meter = _meter([gpu], clock, 0.1)
    with pytest.warns(UserWarning, match="no energy counter"), meter:
        meter.sampler.run_for(10.0)
    (result,) = meter.result.gpus
    assert result.method == "power_integration"
    assert result.energy_j == pytest.approx(1500.0, rel=1e-3)
    assert result.coverage == pytest.approx(1.0)
    assert result.status == "ok"


def test_no_telemetry_reports_unavailable():
    clock = ManualClock()
    gpu = SimulatedGpu(clock, unsupported={"energy", "power_instant", "power_average"})
    result = _run(_meter([gpu], clock, 0.1), 5.0)
    (reading,) = result.gpus
    assert reading.energy_j is None
    assert reading.method == "unavailable"
    assert reading.status == "unavailable"
    assert reading.coverage == 0.0
    assert reading.avg_power_w is None
    assert result.energy_j is None
    assert any("unavailable" in warning for warning in result.warnings)
    series = meter_series(gpu, clock)
    assert all(sample.get("temperature") is not None for sample in series.samples)
    assert all(sample.get("sm_clock") == 1410.0 for sample in series.samples)


def meter_series(gpu: SimulatedGpu, clock: ManualClock) -> DeviceSamples:
    meter = _meter([gpu], clock, 0.1)
    _run(meter, 1.0)
    return meter.sampler.series[0]


def test_not_ready_twice_is_retried():
    clock = ManualClock()
    gpu = SimulatedGpu(clock, idle_power_w=100.0, faults={"energy": [27, 27]})
    meter = _meter([gpu], clock, 0.1)
    result = _run(meter, 2.0)
    (reading,) = result.gpus
    assert reading.retries == 2
    assert meter.sampler.series[0].samples[0].get("energy") == 0.0
    assert reading.energy_j == pytest.approx(100.0 * reading.duration_s, rel=5e-3)


def test_not_ready_exhausted_records_gap():
    clock = ManualClock(10.0)
    gpu = SimulatedGpu(clock, idle_power_w=100.0)
    meter = _meter([gpu], clock, 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with meter:
            meter.sampler.run_for(1.0)
            gpu.faults["energy"].extend([27, 27, 27])
            meter.sampler.run_for(1.0)
    (reading,) = meter.result.gpus
    missing = [s for s in meter.sampler.series[0].samples if s.get("energy") is None]
    assert len(missing) == 1
    assert any(gap.get("query") == "energy" for gap in reading.gaps)
    assert reading.energy_j == pytest.approx(100.0 * reading.duration_s, rel=5e-3)


@pytest.mark.parametrize("placeholder", ["N/A", "ERR!", "", "[N/A]"])
def test_placeholder_power_is_missing(placeholder):
    clock = ManualClock()
    gpu = SimulatedGpu(clock, idle_power_w=120.0, unsupported={"energy"})
    meter = _meter([gpu], clock, 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with meter:
            meter.sampler.run_for(1.0)
            gpu.faults["power_instant"].extend([placeholder] * 3)
            meter.sampler.run_for(1.0)
    samples = meter.sampler.series[0].samples
    assert sum(1 for s in samples if s.get("power_instant") is None) == 1
    assert all(s.get("power_instant") != 0.0 for s in samples)
    reading = meter.result.gpus[0]
    assert reading.energy_j == pytest.approx(120.0 * reading.duration_s, rel=1e-3)
    assert any(gap.get("reason") == "placeholder value" for gap in reading.gaps)


def test_as_reading_placeholders():
    assert as_reading("N/A") is None
    assert as_reading("ERR!") is None
    assert as_reading("") is None
    assert as_reading(None) is None
    assert as_reading(float("nan")) is None
    assert as_reading("61.25 W") == 61.25
    assert as_reading(0) == 0.0


def test_sampler_error_never_raises():
    clock = ManualClock()
    gpu = SimulatedGpu(clock, faults={"energy": [15] * 10, "temperature": [999]})
    result = _run(_meter([gpu], clock, 0.1), 1.0)
    assert result.gpus[0].samples > 0


@pytest.mark.parametrize(("split", "expected_share"), [(MigSplit.none, 1.0), (MigSplit.equal, 0.5)])
def test_mig_slice_reports_shared_parent(split, expected_share):
    clock = ManualClock()
    parent = SimulatedGpu(clock, uuid="GPU-parent", idle_power_w=200.0)
    meter = Meter(["MIG-a"], backend=SimulatedNvml([parent], mig={"MIG-a": 0, "MIG-b": 0}),
                  clock=clock, threaded=False, interval_s=0.1, mig_split=split)
    result = _run(meter, 5.0)
    (reading,) = result.gpus
    assert reading.uuid == "GPU-parent"
    assert reading.shared
    assert reading.mig_uuid == "MIG-a"
    assert reading.energy_j == pytest.approx(1000.0, rel=1e-3)
    assert reading.attributed_energy_j == pytest.approx(1000.0 * expected_share, rel=1e-3)
    assert result.energy_j == pytest.approx(reading.attributed_energy_j)


def test_averaged_power_smears_burst():
    clock = ManualClock()
    gpu = SimulatedGpu(clock, idle_power_w=60.0)
    clock.advance(5.0)
    gpu.set_power(400.0)
    meter = _meter([gpu], clock, 0.01)
    result = _run(meter, 0.3)
    samples = meter.sampler.series[0].samples
    averaged = integrate_power([(s.time_s, s.get("power_average")) for s in samples],
                               5.0, 5.3, 0.01)
    assert averaged.energy_j == pytest.approx(33.3, abs=1.0)
    (reading,) = result.gpus
    assert reading.method == "counter"
    assert reading.energy_j == pytest.approx(120.0, rel=0.01)
    assert reading.integrated_energy_j == pytest.approx(120.0, rel=0.01)


def test_averaged_only_gpu_is_flagged():
    clock = ManualClock()
    gpu = SimulatedGpu(clock, idle_power_w=60.0, unsupported={"energy", "power_instant"})
    result = _run(_meter([gpu], clock, 0.1), 3.0)
    (reading,) = result.gpus
    assert reading.method == "power_integration"
    assert any("one-second average" in warning for warning in reading.warnings)


def _generated_series(points) -> DeviceSamples:
    series = DeviceSamples(SimulatedGpu(ManualClock()))
    for time_s, energy_j, power_w in points:
        series.samples.append(Sample(time_s, {"energy": energy_j, "power_instant": power_w}))
    return series


def test_counter_and_power_disagree():
    times = [0.1 * (i + 1) for i in range(50)]
    series = _generated_series([(0.0, 0.0, None)] + [(t, 187.0 * t / 5.0, 65.4) for t in times])
    with pytest.warns(UserWarning, match="disagree"):
        reading = account_gpu(series, ResolvedDevice(series.device, "0"), 0.0, 5.0, 0.1)
    assert reading.counter_energy_j == pytest.approx(187.0)
    assert reading.integrated_energy_j == pytest.approx(327.0, rel=1e-3)
    assert reading.disagreement == pytest.approx(327.0 / 187.0 - 1, rel=1e-3)
    assert reading.energy_j == pytest.approx(187.0)


def test_small_disagreement_does_not_warn():
    series = _generated_series([(0.1 * i, 10.0 * 0.1 * i, 10.2) for i in range(51)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reading = account_gpu(series, ResolvedDevice(series.device, "0"), 0.0, 5.0, 0.1)
    assert abs(reading.disagreement) < 0.1


def test_fast_polling_uses_distinct_updates():
    clock = ManualClock()
    gpu = SimulatedGpu(clock, idle_power_w=150.0, counter_period_s=0.01)
    jitter = random.Random(3)
    meter = _meter([gpu], clock, 0.001)
    with meter:
        for _ in range(1000):
            clock.advance(0.001 + jitter.uniform(-0.0003, 0.0003))
            meter.sampler.sample()
    values = [s.get("energy") for s in meter.sampler.series[0].samples]
    deltas = [b - a for a, b in itertools.pairwise(values)]
    assert sum(1 for delta in deltas if delta == 0) / len(deltas) == pytest.approx(0.9, abs=0.02)
    (reading,) = meter.result.gpus
    assert reading.method == "counter"
    assert reading.avg_power_w == pytest.approx(150.0, rel=0.01)
    assert reading.counter_update_period_s == pytest.approx(0.01, abs=0.001)


def test_window_shorter_than_update_period_flagged():
    clock = ManualClock(0.0005)
    gpu = SimulatedGpu(clock, idle_power_w=150.0, counter_period_s=0.01)
    meter = _meter([gpu], clock, 0.001)
    with pytest.warns(UserWarning, match="shorter than its update period"), meter:
        meter.sampler.run_for(0.005)
    (reading,) = meter.result.gpus
    assert reading.method == "power_integration"
    assert reading.energy_j == pytest.approx(0.75, rel=0.05)


def test_short_window_insufficient_samples():
    clock = ManualClock()
    gpu = SimulatedGpu(clock, idle_power_w=6.5, unsupported={"energy"})
    meter = _meter([gpu], clock, 1.0)
    with pytest.warns(UserWarning, match="Insufficient samples"), meter:
        clock.advance(0.5)
    (reading,) = meter.result.gpus
    assert reading.energy_j is None
    assert reading.status == "insufficient samples"


def test_mean_power_is_energy_over_duration():
    points = [(float(t), None, 6.5) for t in range(1, 100)] + [(100.0, None, 0.4)]
    series = DeviceSamples(SimulatedGpu(ManualClock()), unsupported={"energy"})
    series.samples = [Sample(t, {"energy": e, "power_instant": w}) for t, e, w in points]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reading = account_gpu(series, ResolvedDevice(series.device, "0"), 0.0, 100.0, 1.0)
    assert reading.avg_power_w == pytest.approx(6.44, abs=0.05)
    assert reading.avg_power_w == pytest.approx(reading.energy_j / 100.0)


def test_overlapping_scopes_not_added():
    board = ScopedReading("board", 1000.0, frozenset({"gpu", "cpu", "dram"}))
    cpu = ScopedReading("cpu", 300.0, frozenset({"cpu"}))
    total = add_disjoint([cpu, board])
    assert total.energy_j == 1000.0
    assert total.added == ["board"]
    assert "cpu" in total.skipped


def test_disjoint_scopes_added():
    gpu = ScopedReading("gpu", 700.0, frozenset({"gpu"}))
    cpu = ScopedReading("cpu", 300.0, frozenset({"cpu"}))
    assert add_disjoint([gpu, cpu]).energy_j == pytest.approx(1000.0)


def test_partly_overlapping_scope_skipped():
    board = ScopedReading("gpu+cpu", 900.0, frozenset({"gpu", "cpu"}))
    memory = ScopedReading("cpu+dram", 400.0, frozenset({"cpu", "dram"}))
    total = add_disjoint([board, memory])
    assert total.added == ["cpu+dram"] or total.added == ["gpu+cpu"]
    assert len(total.skipped) == 1
    assert "overlaps" in next(iter(total.skipped.values()))
