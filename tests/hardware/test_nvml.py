"""NVML wrapper: error mapping, unit conversion and init failures through the CLI."""

from __future__ import annotations

import sys

import pytest
from fake_nvml import fake_pynvml
from typer.testing import CliRunner

from energaizer.cli import app
from energaizer.errors import HardwareError
from energaizer.hardware import nvml
from energaizer.hardware.nvml import (
    Nvml,
    NvmlDriverNotLoadedError,
    NvmlLibraryNotFoundError,
    NvmlNoPermissionError,
    NvmlNotReadyError,
    NvmlNotSupportedError,
    NvmlVersionMismatchError,
    nvml_error,
)

INIT_FAILURES = {
    18: NvmlVersionMismatchError,
    4: NvmlNoPermissionError,
    12: NvmlLibraryNotFoundError,
    9: NvmlDriverNotLoadedError,
}


@pytest.mark.parametrize("code", sorted(INIT_FAILURES))
def test_init_failure_maps_to_typed_error(monkeypatch, code):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(init_error=code))
    with pytest.raises(INIT_FAILURES[code]) as caught:
        Nvml()
    assert isinstance(caught.value, HardwareError)
    assert caught.value.exit_code == 3
    assert caught.value.code == code
    assert "0 GPUs" not in str(caught.value)


def test_init_failure_messages_distinct(monkeypatch):
    messages = set()
    for code in INIT_FAILURES:
        monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(init_error=code))
        with pytest.raises(HardwareError) as caught:
            Nvml()
        messages.add(str(caught.value))
    assert len(messages) == 4


def test_missing_package_is_library_not_found(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.raises(NvmlLibraryNotFoundError, match="nvidia-ml-py"):
        nvml.library()


def test_error_codes_map_to_classes():
    assert isinstance(nvml_error(3, "query"), NvmlNotSupportedError)
    assert isinstance(nvml_error(27, "query"), NvmlNotReadyError)
    assert nvml_error(27, "query").transient
    assert not nvml_error(3, "query").transient
    assert type(nvml_error(999, "query")) is nvml.NvmlError


def test_device_readings_in_si_units(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(energy_mj=123_456, power_mw=150_000,
                                                           instant_mw=151_000))
    with Nvml() as session:
        device = session.device(session.handle_by_index(0), 0)
        assert device.total_energy_j() == pytest.approx(123.456)
        assert device.power_average_w() == pytest.approx(150.0)
        assert device.power_instant_w() == pytest.approx(151.0)
        assert device.power_limit_w() == pytest.approx(250.0)
        assert device.name == "NVIDIA A100-PCIE-40GB"
        assert session.cuda_version() == "12.4"
        assert session.driver_version() == "550.54"


def test_field_value_error_is_typed(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(field_error=3))
    with Nvml() as session:
        device = session.device(session.handle_by_index(0), 0)
        with pytest.raises(NvmlNotSupportedError):
            device.power_instant_w()


@pytest.mark.parametrize("code", sorted(INIT_FAILURES))
@pytest.mark.parametrize("arguments", [["measure", "--", "true"], ["calibrate", "--device", "0"]])
def test_cli_init_failure_exits_3(monkeypatch, tmp_path, code, arguments):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(init_error=code))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 3, result.output
    assert "NVML initialization failed" in result.output
    assert "0 GPUs" not in result.output


def test_cli_without_nvml_library_names_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(init_error=12))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["measure", "--", "true"])
    assert result.exit_code == 3, result.output
    assert "libnvidia-ml.so" in result.output
    assert "--simulate" in result.output


def test_cli_on_machine_without_nvml(tmp_path, monkeypatch):
    try:
        Nvml().close()
    except HardwareError:
        pass
    else:
        pytest.skip("NVML works on this machine")
    monkeypatch.chdir(tmp_path)
    for arguments in (["measure", "--", "true"], ["calibrate", "--device", "0"]):
        result = CliRunner().invoke(app, arguments)
        assert result.exit_code == 3, result.output
        assert "NVML" in result.output
