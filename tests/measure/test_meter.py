"""Meter against simulated ground truth, its decorator form, the timeline CSV and the
`energaizer measure --simulate` command."""

from __future__ import annotations

import csv
import json
import sys
import warnings

import pytest
from typer.testing import CliRunner

from energaizer.cli import app
from energaizer.hardware.simulated import ManualClock, SimulatedGpu, SimulatedNvml
from energaizer.measure import Meter
from energaizer.measure.timeline import COLUMNS


def _meter(gpus, clock, interval_s=0.05, **options) -> Meter:
    return Meter(backend=SimulatedNvml(gpus), clock=clock, threaded=False,
                 interval_s=interval_s, **options)


@pytest.mark.parametrize("unsupported", [set(), {"energy"}])
def test_meter_matches_ground_truth(unsupported):
    clock = ManualClock(3.0)
    gpu = SimulatedGpu(clock, idle_power_w=70.0, noise_w=5.0, unsupported=unsupported)
    meter = _meter([gpu], clock)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with meter:
            for power_w in (250.0, 90.0, 320.0, 180.0):
                gpu.set_power(power_w)
                meter.sampler.run_for(3.0)
    (reading,) = meter.result.gpus
    start_s, end_s = reading.window_s
    truth_j = gpu.true_energy_j(start_s, end_s)
    assert reading.energy_j == pytest.approx(truth_j, rel=0.01)
    assert reading.avg_power_w == pytest.approx(truth_j / (end_s - start_s), rel=0.01)
    assert reading.peak_power_w >= 320.0


def test_two_gpus_add_up():
    clock = ManualClock()
    gpus = [SimulatedGpu(clock, index=i, uuid=f"GPU-{i}", idle_power_w=100.0 * (i + 1))
            for i in range(2)]
    meter = _meter(gpus, clock)
    with meter:
        meter.sampler.run_for(2.0)
    result = meter.result
    assert [gpu.energy_j for gpu in result.gpus] == pytest.approx([200.0, 400.0], rel=1e-3)
    assert result.energy_j == pytest.approx(600.0, rel=1e-3)


def test_meter_as_decorator():
    clock = ManualClock()
    gpu = SimulatedGpu(clock, idle_power_w=200.0)
    meter = _meter([gpu], clock)

    @meter
    def work(seconds: float) -> str:
        meter.sampler.run_for(seconds)
        return "done"

    assert work(2.0) == "done"
    assert meter.result.gpus[0].energy_j == pytest.approx(400.0, rel=1e-3)
    assert work(1.0) == "done"
    assert meter.result.gpus[0].energy_j == pytest.approx(200.0, rel=1e-3)


def test_result_labelled_simulated(tmp_path):
    clock = ManualClock()
    gpu = SimulatedGpu(clock, faults={"power_instant": ["N/A"] * 3})
    meter = _meter([gpu], clock, out=tmp_path)
    with meter:
        meter.sampler.run_for(1.0)
    data = meter.result.to_dict()
    assert data["label"] == "simulated"
    assert data["gpus"][0]["simulated"] is True
    with open(meter.result.timeline_csv, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert tuple(rows[0]) == COLUMNS
    assert {row["source"] for row in rows} == {"simulated"}
    assert rows[0]["power_w"] == ""
    assert rows[0]["missing"] == "power_instant"
    assert float(rows[-1]["energy_j"]) == pytest.approx(60.0, rel=0.02)


def test_cli_measure_simulate(tmp_path):
    command = [sys.executable, "-c", "import time; time.sleep(0.3)"]
    result = CliRunner().invoke(app, ["measure", "--simulate", "--interval-ms", "10", "--out",
                                      str(tmp_path), "--json", "--", *command])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["label"] == "simulated"
    assert data["command"] == command
    (gpu,) = data["gpus"]
    assert gpu["method"] == "counter"
    assert gpu["energy_j"] > 0
    assert (tmp_path / "power_timeline.csv").is_file()
    assert json.loads((tmp_path / "measure.json").read_text())["exit_code"] == 0


def test_cli_measure_out_is_file(tmp_path):
    existing = tmp_path / "afile"
    existing.write_text("")
    marker = tmp_path / "ran"
    command = [sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"]
    result = CliRunner().invoke(app, ["measure", "--simulate", "--out", str(existing), "--",
                                      *command])
    assert result.exit_code == 2, result.output
    assert f"Output folder {existing} is an existing file; give --out" in result.output
    assert not marker.exists()


def test_cli_measure_passes_exit_code():
    result = CliRunner().invoke(app, ["measure", "--simulate", "--", sys.executable, "-c",
                                      "raise SystemExit(7)"])
    assert result.exit_code == 7, result.output
    assert "simulated run" in result.output


def test_cli_measure_missing_command_fails():
    result = CliRunner().invoke(app, ["measure", "--simulate", "--", "no-such-program-x"])
    assert result.exit_code == 127, result.output
