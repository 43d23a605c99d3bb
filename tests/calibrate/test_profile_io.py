"""Calibration profiles: round trip, schema versions, defaults and atomic writes."""

from __future__ import annotations

import json

import pytest

from energaizer.analyze.opclass import OpClass
from energaizer.calibrate.measurements import read_measurements
from energaizer.calibrate.profile import (
    Calibration,
    calibration_for,
    default_calibration,
    load_calibration,
    save_calibration,
)
from energaizer.errors import InputError, ProfileError
from energaizer.hardware.profiles import load_profile
from energaizer.perf import Corrections
from energaizer.power.coefficients import PowerCoefficients


def _calibration() -> Calibration:
    return Calibration(
        "a10", PowerCoefficients({"dram": 50.0, "tensor": 30.0}),
        {OpClass.GEMM: Corrections(1.1, 0.9, 1.2, 3e-6)}, 1.5e-5,
        validation={"method": "leave-one-model-out"},
    )


def test_round_trip(tmp_path):
    path = tmp_path / "a10.json"
    save_calibration(_calibration(), path)
    loaded = load_calibration(path)
    assert loaded.power.get("dram") == 50.0
    assert loaded.corrections[OpClass.GEMM].main == pytest.approx(0.9)
    assert loaded.dispatch_s == pytest.approx(1.5e-5)
    assert json.loads(path.read_text())["schema"] == "energaizer.calibration/1"


def test_older_schema_names_the_version(tmp_path):
    path = tmp_path / "old.json"
    data = _calibration().to_dict()
    data["schema"] = "energaizer.calibration/0"
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError) as caught:
        load_calibration(path)
    assert "energaizer.calibration/1" in str(caught.value)


@pytest.mark.parametrize("content", ["{", "[]", '{"schema": "energaizer.calibration/1"}'])
def test_malformed_profile(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ProfileError):
        load_calibration(path)


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "a10.json"
    save_calibration(_calibration(), path)
    before = path.read_text()

    def broken_sync(*args, **kwargs):
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr("energaizer.fileio.os.fsync", broken_sync)
    with pytest.raises(RuntimeError):
        save_calibration(_calibration(), path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a10.json"]


def test_default_calibration_scales_with_headroom():
    small = default_calibration(load_profile("t4"))
    large = default_calibration(load_profile("h100-sxm5-80gb"))
    assert small.kind in ("default", "uncalibrated")
    assert large.power.get("tensor") > small.power.get("tensor")


def test_default_borrows_same_architecture_fit():
    hopper = default_calibration(load_profile("h200-sxm-141gb"))
    ada = default_calibration(load_profile("l4"))
    assert "h100-sxm5-80gb fit" in hopper.source
    assert "a100-pcie-40gb fit" in ada.source
    # The H200 has the H100's chip with faster memory: the DRAM term grows by the
    # bandwidth ratio, the SM terms by SMs x clock.
    h100 = calibration_for(load_profile("h100-sxm5-80gb"))
    assert hopper.power.get("dram") == pytest.approx(h100.power.get("dram") * 4800 / 3350,
                                                     rel=0.02)


def test_shipped_calibration_preferred():
    profile = load_profile("a100-pcie-40gb")
    calibration = calibration_for(profile)
    assert calibration.kind in ("calibrated", "uncalibrated")


def test_measurement_set_errors(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("model,dtype\nx,bf16\n")
    with pytest.raises(InputError, match="missing columns"):
        read_measurements(path)
    header = "model,dtype,batch,seq,phase,attention,gpu,clock_mhz,time_ms,energy_j\n"
    path.write_text(header + "gpt2,bf16,8,128,prefill,default,a10,900,-3,1.0\n")
    with pytest.raises(InputError, match="line 2: time_ms must be positive"):
        read_measurements(path)
    path.write_text(header + "gpt2,int4,8,128,prefill,default,a10,900,3,1.0\n")
    with pytest.raises(InputError, match="dtype"):
        read_measurements(path)
    path.write_text(header + "gpt2,bf16,8,,prefill,default,a10,,3,1.0\n")
    rows = read_measurements(path)
    assert rows[0].seq is None
    assert rows[0].clock_mhz is None
    assert rows[0].power_w == pytest.approx(333.333, rel=1e-3)


def test_fit_of_another_gpu_warned():
    import energaizer

    path = calibration_for(load_profile("a10")).source
    result = energaizer.estimate(model="gpt2", gpu="h100-sxm5-80gb", calibration=path)
    assert any("was fitted on a10, not h100-sxm5-80gb" in w for w in result.warnings)
    own = energaizer.estimate(model="gpt2", gpu="a10", calibration=path)
    assert not any("was fitted on" in w for w in own.warnings)
