"""Unit conversions, region lookups, feature costs and the report files."""

from __future__ import annotations

import base64
import csv
import json
import logging
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

REPOSITORY = Path(__file__).resolve().parents[2]
from energaizer.cli import app
from energaizer.costing import conversions
from energaizer.costing.feature import (
    DEFAULT_PUE,
    feature_cost,
    feature_from_mapping,
    load_feature_spec,
)
from energaizer.costing.regions import carbon_intensity
from energaizer.errors import InputError
from energaizer.report.cost import grid_line

EXAMPLE = REPOSITORY / "examples" / "chat-feature.yaml"
SERVING = {"model": "llama-3.1-8b", "batch": 32, "prompt_tokens": 256, "output_tokens": 64}


def test_milliwatt_hour_to_kwh():
    energy_j = conversions.mw_seconds_to_j(250_000, 3600)
    assert energy_j == pytest.approx(9.0e5)
    assert conversions.j_to_kwh(energy_j) == pytest.approx(0.25)
    assert conversions.kwh_to_j(0.25) == pytest.approx(energy_j)


def test_millijoule_round_trip():
    assert conversions.mj_to_kwh(1.0e9) == pytest.approx(0.2778, abs=1e-4)
    assert conversions.kwh_to_mj(conversions.mj_to_kwh(1.0e9)) == pytest.approx(1.0e9)


def test_microjoule_round_trip():
    assert conversions.uj_to_kwh(3.6e12) == pytest.approx(1.0)
    assert conversions.kwh_to_uj(1.0) == pytest.approx(3.6e12)


def test_mean_power_is_energy_over_time():
    energy_j = 99 * 6.5 + 0.4  # 99 one-second samples at 6.5 W, then one at 0.4 W
    assert conversions.mean_power_w(energy_j, 100.0) == pytest.approx(6.439)
    with pytest.raises(ValueError):
        conversions.mean_power_w(1.0, 0.0)


def test_region_country_found():
    found = carbon_intensity("SE")
    assert found.used == "SE"
    assert found.fallback is None
    assert found.year == 2023


def test_region_zone_falls_back_to_country():
    found = carbon_intensity("aws:eu-north-1")
    assert found.used == "SE"
    assert found.fallback == "country"


@pytest.mark.parametrize("name", ["mars-central-1", "gcp:nowhere", "XX"])
def test_region_unknown_falls_back_to_world(name):
    found = carbon_intensity(name)
    assert found.used == "world"
    assert found.fallback == "world"
    assert found.carbon_intensity_g_per_kwh > 0


def test_region_norway_code_is_string():
    assert carbon_intensity("NO").used == "NO"


def test_region_missing_uses_world():
    assert carbon_intensity(None).fallback == "none"


def test_feature_defaults_recorded():
    feature = feature_from_mapping({"serving": SERVING})
    assert feature.pue == DEFAULT_PUE
    assert "pue" in feature.defaults_used
    assert "region" in feature.defaults_used


@pytest.mark.parametrize("extra", [{"pue": 0.9}, {"electricity_usd_per_kwh": -1},
                                   {"colour": "red"}])
def test_feature_invalid_rejected(extra):
    with pytest.raises(InputError):
        feature_from_mapping({"serving": SERVING, **extra})


def test_feature_cost_applies_pue_once():
    feature = feature_from_mapping({"serving": SERVING, "pue": 1.5, "region": "FR",
                                    "electricity_usd_per_kwh": 0.2, "requests_per_day": 1000})
    cost = feature_cost(feature)
    request = cost.per_request
    assert request["facility_energy_j"] == pytest.approx(1.5 * request["it_energy_j"])
    kwh = request["facility_energy_j"] / 3.6e6
    assert request["electricity_usd"] == pytest.approx(0.2 * kwh)
    assert request["co2e_g"] == pytest.approx(56 * kwh)
    assert cost.per_day["it_energy_j"] == pytest.approx(1000 * request["it_energy_j"])
    assert cost.per_month["cost_usd"] == pytest.approx(cost.per_day["cost_usd"] * 30.4375)
    assert cost.per_million_tokens["output_tokens"] == pytest.approx(1e6)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    result = CliRunner().invoke(app, ["report", str(EXAMPLE), "-o", str(folder)])
    assert result.exit_code == 0, result.output
    return folder


def test_report_files_written(report_dir):
    for name in ("report.md", "report.html", "report.csv", "report.json",
                 "energy_by_phase.png", "cost_by_prompt.png", "power_timeline.png",
                 "idle_share.png"):
        assert (report_dir / name).is_file(), name


def test_report_json_fields(report_dir):
    data = json.loads((report_dir / "report.json").read_text())
    for key in ("it_energy_j", "facility_energy_j", "pue", "cost_usd", "co2e_g"):
        assert key in data, key
    assert data["per_month"]["cost_usd"] > data["per_day"]["cost_usd"]
    assert data["grid"]["fallback"] == "country"
    assert data["estimate"]["source"]["kind"] == "serving"


def test_report_csv_periods(report_dir):
    with (report_dir / "report.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert rows[0].keys() >= {"quantity", "per_request", "per_million_tokens", "per_month"}
    assert {row["quantity"] for row in rows} >= {"it_energy_j", "co2e_g", "cost_usd"}


def test_report_markdown_states_fallback(report_dir):
    text = (report_dir / "report.md").read_text()
    assert "aws:us-east-1" in text
    assert "country's was used" in text


def test_report_markdown_states_serving_settings(report_dir):
    text = (report_dir / "report.md").read_text()
    assert "Prefix-cache hit rate 0 " in text
    assert "kernel times analytical, as for CUDA-graph decode" in text


def test_report_html_self_contained(report_dir):
    page = (report_dir / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 4
    assert all(base64.b64decode(image)[:8] == b"\x89PNG\r\n\x1a\n" for image in images)
    assert "http://" not in page
    assert "https://" not in page


def test_report_missing_spec_exit_code(tmp_path):
    result = CliRunner().invoke(app, ["report", str(tmp_path / "none.yaml"), "-o",
                                      str(tmp_path)])
    assert result.exit_code == 2


def test_example_spec_loads():
    assert load_feature_spec(EXAMPLE).serving.batch == 64


def test_report_output_is_file(tmp_path):
    existing = tmp_path / "afile"
    existing.write_text("keep me\n")
    result = CliRunner().invoke(app, ["report", str(EXAMPLE), "-o", str(existing)])
    assert result.exit_code == 2, result.output
    assert f"Output folder {existing} is an existing file" in result.output
    assert existing.read_text() == "keep me\n"


def test_report_output_under_file(tmp_path):
    existing = tmp_path / "afile"
    existing.write_text("")
    result = CliRunner().invoke(app, ["report", str(EXAMPLE), "-o", str(existing / "out")])
    assert result.exit_code == 2, result.output
    assert f"Cannot create output folder {existing / 'out'}" in result.output


def _feature_file(folder: Path, calibration: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "feature.yaml"
    path.write_text(f"serving: {{model: llama-3.1-8b, calibration: {calibration}}}\n")
    return path


@pytest.mark.parametrize("calibration, message", [
    ("../outside.json", "leads outside the spec's folder"),
    ("/etc/passwd", "is an absolute path"),
])
def test_feature_calibration_must_stay_inside(tmp_path, calibration, message):
    path = _feature_file(tmp_path / "spec", calibration)
    with pytest.raises(InputError, match=f"serving.calibration {calibration} {message}"):
        load_feature_spec(path)


def test_feature_calibration_symlink_outside(tmp_path):
    (tmp_path / "outside.json").write_text("{}")
    path = _feature_file(tmp_path / "spec", "linked.json")
    (tmp_path / "spec" / "linked.json").symlink_to(tmp_path / "outside.json")
    with pytest.raises(InputError, match="leads outside"):
        load_feature_spec(path)


def test_feature_calibration_resolved_inside(tmp_path):
    path = _feature_file(tmp_path / "spec", "fits/a10.json")
    feature = load_feature_spec(path)
    assert feature.serving.calibration == str((tmp_path / "spec" / "fits" / "a10.json").resolve())


def test_cli_report_calibration_outside(tmp_path):
    path = _feature_file(tmp_path / "spec", "../outside.json")
    result = CliRunner().invoke(app, ["report", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "leads outside" in result.output


def test_region_unknown_logs_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="energaizer.costing.regions"):
        found = carbon_intensity("mars:olympus")
    assert found.fallback == "world"
    assert "Region 'mars:olympus' has no carbon intensity" in caplog.text
    assert f"world average of {found.carbon_intensity_g_per_kwh:g} g CO2e/kWh" in caplog.text


@pytest.mark.parametrize("name", ["SE", "aws:eu-north-1", "world", None])
def test_region_known_no_warning(caplog, name):
    with caplog.at_level(logging.WARNING, logger="energaizer.costing.regions"):
        found = carbon_intensity(name)
    assert caplog.text == ""
    assert found.fallback != "world"


def test_cli_report_unknown_region_warns(tmp_path, caplog):
    spec = tmp_path / "feature.yaml"
    spec.write_text(f"serving: {json.dumps(SERVING)}\nregion: mars:olympus\n")
    with caplog.at_level(logging.WARNING, logger="energaizer.costing.regions"):
        result = CliRunner().invoke(app, ["report", str(spec), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "Region 'mars:olympus' has no carbon intensity" in caplog.text
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "Region mars:olympus: region not found, so the world average was used." in markdown


def test_grid_line_explicit_intensity_ignores_region():
    feature = feature_from_mapping({"serving": SERVING, "region": "FR",
                                    "carbon_intensity_g_per_kwh": 100})
    line = grid_line(feature_cost(feature).grid)
    assert line == ("Grid carbon intensity 100 g CO2e/kWh, given in the feature spec; "
                    "region FR was ignored.")


def test_grid_line_no_region():
    line = grid_line(carbon_intensity(None))
    assert line.endswith(". No region given, so the world average was used.")
    assert "not given:" not in line


def test_grid_line_found_region():
    assert grid_line(carbon_intensity("SE")).endswith("Region SE: found as given.")
