"""Device calibration on the simulated GPU: coefficient recovery, budget, resume."""

from __future__ import annotations

import json
import warnings

import pytest
from typer.testing import CliRunner

from energaizer.calibrate.device import calibrate_device, calibrate_simulated
from energaizer.calibrate.plan import full_plan, scale_plan
from energaizer.calibrate.points import PointStore
from energaizer.calibrate.profile import load_calibration
from energaizer.calibrate.runners import SimulatedRunner
from energaizer.cli import app
from energaizer.errors import InputError
from energaizer.hardware.profiles import load_profile

KNOWN = {"dram": 110.0, "active": 45.0, "l2": 25.0, "smem": 12.0, "tensor": 170.0,
         "fp32": 70.0, "sfu": 8.0}


@pytest.fixture(autouse=True)
def _quiet_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


class CountingRunner(SimulatedRunner):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.measured: list[str] = []

    def measure(self, point, warmup_s, steady_s):
        self.measured.append(point.key)
        return super().measure(point, warmup_s, steady_s)


def test_recovers_known_coefficients(tmp_path):
    result = calibrate_simulated("a100-pcie-40gb", tmp_path / "sim.json", coefficients=KNOWN)
    fitted = result["calibration"]["power"]["coefficients_w"]
    for module, watts in KNOWN.items():
        assert fitted[module] == pytest.approx(watts, rel=0.05), module
    assert result["validation"]["power_mape"] < 5.0
    assert result["simulated"]


def test_recovers_coefficients_with_noise(tmp_path):
    profile = load_profile("h100-sxm5-80gb")
    runner = SimulatedRunner(profile, KNOWN, noise_w=5.0, seed=11)
    result = calibrate_device(runner, profile, tmp_path / "h100.json")
    fitted = result["calibration"]["power"]["coefficients_w"]
    for module, watts in KNOWN.items():
        assert fitted[module] == pytest.approx(watts, rel=0.05), module


def test_profile_written_with_conditions(tmp_path):
    calibrate_simulated("a100-pcie-40gb", tmp_path / "sim.json", coefficients=KNOWN)
    calibration = load_calibration(tmp_path / "sim.json")
    assert calibration.identity["simulated"] is True
    assert calibration.fitted_on["label"] == "simulated"
    assert calibration.conditions["clocks_mhz"] == [1410.0]
    assert calibration.conditions["idle_power_w"] > 0
    assert calibration.validation["rows"] > 0


def test_killed_run_resumes_without_loss(tmp_path):
    profile = load_profile("a100-pcie-40gb")
    output = tmp_path / "cal.json"
    points = tmp_path / "cal.points.jsonl"

    def kill_after_ten(record: dict) -> None:
        if len(PointStore(points).load()) == 10:
            raise KeyboardInterrupt

    first = CountingRunner(profile, KNOWN)
    with pytest.raises(KeyboardInterrupt):
        calibrate_device(first, profile, output, on_point=kill_after_ten)
    assert len(PointStore(points).load()) == 10
    assert not output.exists()

    second = CountingRunner(profile, KNOWN)
    result = calibrate_device(second, profile, output, resume=True)
    assert not set(first.measured) & set(second.measured)
    assert len(first.measured) + len(second.measured) == len(full_plan())
    lines = points.read_text().splitlines()
    assert len(lines) == len({json.loads(line)["key"] for line in lines}) == len(full_plan())
    assert result["points"] == len(full_plan())


def test_truncated_last_line_is_remeasured(tmp_path):
    store = PointStore(tmp_path / "points.jsonl")
    store.start(resume=False)
    store.append({"key": "idle", "power_w": 60.0})
    with store.path.open("a") as stream:
        stream.write('{"key": "gemm-bf16-1')
    assert list(store.start(resume=True)) == ["idle"]
    assert store.path.read_text().endswith("}\n")


def test_existing_points_need_resume(tmp_path):
    store = PointStore(tmp_path / "points.jsonl")
    store.path.write_text('{"key": "idle"}\n')
    with pytest.raises(InputError, match="--resume"):
        store.start(resume=False)


def test_budget_scales_plan_down():
    plan = full_plan()
    scaled = scale_plan(plan, 40.0)
    assert scaled.duration_s <= 40.0
    assert scaled.steady_s > 1.0
    assert {point.kind for point in scaled.points} == {point.kind for point in plan}
    assert scale_plan(plan, 300.0).points == plan


def test_budget_too_small_raises():
    with pytest.raises(InputError, match="too small"):
        scale_plan(full_plan(), 5.0)


def test_cli_calibrate_simulate(tmp_path):
    output = tmp_path / "sim.json"
    arguments = ["calibrate", "--simulate", "--gpu", "a100-pcie-40gb", "--output", str(output)]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert "simulated" in result.output
    assert output.is_file()
    again = CliRunner().invoke(app, arguments)
    assert again.exit_code == 2, again.output
    assert "--resume" in again.output
    resumed = CliRunner().invoke(app, arguments + ["--resume"])
    assert resumed.exit_code == 0, resumed.output


def test_cli_calibrate_needs_one_source(tmp_path):
    result = CliRunner().invoke(app, ["calibrate"])
    assert result.exit_code == 2
    assert "exactly one" in result.output


def test_cli_calibrate_output_is_folder(tmp_path):
    result = CliRunner().invoke(app, ["calibrate", "--simulate", "--output", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert f"Output file {tmp_path} is an existing folder" in result.output
    assert not list(tmp_path.iterdir())


def test_cli_calibrate_output_under_file(tmp_path):
    existing = tmp_path / "afile"
    existing.write_text("")
    result = CliRunner().invoke(app, ["calibrate", "--simulate", "--output",
                                      str(existing / "sim.json")])
    assert result.exit_code == 2, result.output
    assert f"{existing} is a file, not a folder" in result.output
