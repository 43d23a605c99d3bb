"""An LLM feature spec and its energy, cost and carbon per request, per 1M output
tokens, per day and per month.

IT energy is what the GPUs draw (the serving estimate). Facility energy is IT energy
times the PUE, applied once here. Electricity cost and CO2e follow facility energy;
GPU rental follows the GPU time each request takes up. Host CPUs, memory and network
are not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from energaizer.costing.conversions import j_to_kwh
from energaizer.costing.regions import CarbonIntensity, carbon_intensity
from energaizer.errors import InputError
from energaizer.fileio import path_inside, read_yaml
from energaizer.serving.estimate import ServingEstimate, estimate_serving
from energaizer.serving.spec import ServingSpec, spec_from_mapping

# Defaults used when the spec leaves a value out; every report lists them as defaults.
# Estimate: about the average US commercial electricity price in 2023 (US EIA, Electric
# Power Monthly), entered without the source at hand.
DEFAULT_ELECTRICITY_USD_PER_KWH = 0.13
# The average annual PUE reported in the Uptime Institute Global Data Center Survey
# 2023 (1.58), entered without the source at hand.
DEFAULT_PUE = 1.58
DEFAULT_REQUESTS_PER_DAY = 10_000
DEFAULT_GPU_USD_PER_HOUR = 0.0  # rental is left out unless the spec gives a price
DAYS_PER_MONTH = 365.25 / 12
FEATURE_KEYS = ("name", "serving", "requests_per_day", "electricity_usd_per_kwh", "pue",
                "carbon_intensity_g_per_kwh", "region", "gpu_usd_per_hour")


@dataclass(frozen=True)
class FeatureSpec:
    """A feature served by an LLM, with its traffic, prices and grid."""

    name: str
    serving: ServingSpec
    requests_per_day: float = DEFAULT_REQUESTS_PER_DAY
    electricity_usd_per_kwh: float = DEFAULT_ELECTRICITY_USD_PER_KWH
    pue: float = DEFAULT_PUE
    carbon_intensity_g_per_kwh: float | None = None
    region: str | None = None
    gpu_usd_per_hour: float = DEFAULT_GPU_USD_PER_HOUR
    defaults_used: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("requests_per_day", "electricity_usd_per_kwh", "gpu_usd_per_hour"):
            _check_number(name, getattr(self, name), minimum=0.0)
        _check_number("pue", self.pue, minimum=1.0)
        if self.carbon_intensity_g_per_kwh is not None:
            _check_number("carbon_intensity_g_per_kwh", self.carbon_intensity_g_per_kwh, 0.0)


def _check_number(name: str, value: Any, minimum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{name} must be a number, got {value!r}.")
    if value < minimum:
        raise InputError(f"{name} must be at least {minimum:g}, got {value:g}.")


def load_feature_spec(path: str | Path) -> FeatureSpec:
    """Read a feature spec YAML file (with `yaml.safe_load`).

    A `serving.calibration` path is resolved against the spec's folder. As for a
    standalone serving spec, InputError is raised when it is absolute or leads outside.
    """
    path = Path(path)
    data = read_yaml(path, "feature spec")
    serving = data.get("serving") if isinstance(data, dict) else None
    if isinstance(serving, dict) and serving.get("calibration") is not None:
        calibration = path_inside(path.parent, str(serving["calibration"]),
                                  f"Feature spec {path}: serving.calibration")
        data = {**data, "serving": {**serving, "calibration": str(calibration)}}
    return feature_from_mapping(data, origin=f"Feature spec {path}", default_name=path.stem)


def feature_from_mapping(data: Any, origin: str = "feature spec",
                         default_name: str = "feature") -> FeatureSpec:
    """Build a FeatureSpec from a mapping, recording which values were defaulted."""
    if not isinstance(data, dict):
        raise InputError(f"{origin} must be a YAML mapping, not {type(data).__name__}.")
    unknown = sorted(set(data) - set(FEATURE_KEYS))
    if unknown:
        raise InputError(f"{origin} has unknown keys {', '.join(unknown)}; expected "
                         f"{', '.join(FEATURE_KEYS)}.")
    if not isinstance(data.get("serving"), dict):
        raise InputError(f"{origin} needs a serving: mapping with at least model:.")
    serving = spec_from_mapping(data["serving"], origin=f"{origin}, serving")
    defaults = [key for key in ("requests_per_day", "electricity_usd_per_kwh", "pue",
                                "gpu_usd_per_hour") if key not in data]
    if "carbon_intensity_g_per_kwh" not in data and "region" not in data:
        defaults.append("region")
    values = {key: data[key] for key in FEATURE_KEYS[2:] if key in data}
    return FeatureSpec(name=str(data.get("name", default_name)), serving=serving,
                       defaults_used=tuple(defaults), **values)


@dataclass
class FeatureCost:
    """Energy, cost and CO2e of a feature; every `per_*` map has the same keys."""

    feature: FeatureSpec
    serving: ServingEstimate
    grid: CarbonIntensity
    per_request: dict[str, float]
    per_million_tokens: dict[str, float]
    per_day: dict[str, float]
    per_month: dict[str, float]
    assumptions: dict[str, Any] = field(default_factory=dict)


def cost_per_request(serving: ServingEstimate, feature: FeatureSpec,
                     grid: CarbonIntensity) -> dict[str, float]:
    """IT and facility energy, electricity and GPU cost, and CO2e of one request."""
    it_energy_j = serving.energy_per_request_j
    facility_energy_j = it_energy_j * feature.pue
    facility_kwh = j_to_kwh(facility_energy_j)
    gpu_hours = serving.estimate.duration_s * feature.serving.num_gpus / 3600.0
    electricity_usd = facility_kwh * feature.electricity_usd_per_kwh
    gpu_usd = gpu_hours * feature.gpu_usd_per_hour
    return {
        "it_energy_j": it_energy_j,
        "facility_energy_j": facility_energy_j,
        "facility_energy_kwh": facility_kwh,
        "electricity_usd": electricity_usd,
        "gpu_rental_usd": gpu_usd,
        "cost_usd": electricity_usd + gpu_usd,
        "co2e_g": facility_kwh * grid.carbon_intensity_g_per_kwh,
        "gpu_hours": gpu_hours,
        "output_tokens": serving.output_tokens,
    }


def feature_cost(feature: FeatureSpec, serving: ServingEstimate | None = None) -> FeatureCost:
    """Estimate serving (unless given) and price it per request, 1M tokens, day and month."""
    serving = serving or estimate_serving(feature.serving)
    grid = _grid(feature)
    request = cost_per_request(serving, feature, grid)
    requests_per_million = 1e6 / serving.output_tokens
    per_day = {key: value * feature.requests_per_day for key, value in request.items()}
    return FeatureCost(
        feature=feature,
        serving=serving,
        grid=grid,
        per_request=request,
        per_million_tokens={key: value * requests_per_million for key, value in request.items()},
        per_day=per_day,
        per_month={key: value * DAYS_PER_MONTH for key, value in per_day.items()},
        assumptions={
            "pue": feature.pue,
            "electricity_usd_per_kwh": feature.electricity_usd_per_kwh,
            "gpu_usd_per_hour": feature.gpu_usd_per_hour,
            "requests_per_day": feature.requests_per_day,
            "days_per_month": DAYS_PER_MONTH,
            "defaults_used": list(feature.defaults_used),
            "not_counted": "host CPUs, memory, network, and GPUs idle for lack of traffic",
        },
    )


def _grid(feature: FeatureSpec) -> CarbonIntensity:
    if feature.carbon_intensity_g_per_kwh is not None:
        return CarbonIntensity(requested=feature.region, used="spec",
                               carbon_intensity_g_per_kwh=feature.carbon_intensity_g_per_kwh,
                               source="given in the feature spec", year=None, fallback=None)
    return carbon_intensity(feature.region)
