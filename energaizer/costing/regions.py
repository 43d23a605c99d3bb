"""Grid carbon intensity by region, with a visible fallback: zone, country, world average.

A lookup never raises for an unknown name and never returns a value silently. Every
result states which entry was used, its source and year, and whether it fell back.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from energaizer.errors import ProfileError
from energaizer.hardware.profiles import profiles_dir

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CarbonIntensity:
    """The intensity a report uses, and where it came from.

    `fallback` is None when `requested` was found with its own value, else "country"
    (a zone used its country's value), "world" (the world average) or "none" (the user
    gave no region and no value, so the world average applies). `used` is "spec" when a
    feature spec gave the intensity itself, and then a `requested` region was ignored.
    """

    requested: str | None
    used: str
    carbon_intensity_g_per_kwh: float
    source: str
    year: int | None
    fallback: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def regions_path() -> Path:
    """Return the path of the shipped region table."""
    return profiles_dir() / "regions.yaml"


@functools.cache
def _table(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ProfileError(f"Cannot read the region table {path}: {error.strerror}.") from None
    if not isinstance(data, dict) or "world" not in data:
        raise ProfileError(f"Region table {path} has no world entry; reinstall energaizer.")
    return data


def carbon_intensity(region: str | None, path: Path | None = None) -> CarbonIntensity:
    """Look up a zone (such as "aws:eu-north-1") or a country code (such as "SE").

    Falls back from zone to country to the world average and records that in the result.
    A named region that falls back to the world average also logs a warning.
    """
    table = _table(path or regions_path())
    world = table["world"]
    countries = {str(key).upper(): value for key, value in (table.get("countries") or {}).items()}
    zones = {str(key).lower(): value for key, value in (table.get("zones") or {}).items()}
    if region is None or not str(region).strip():
        return _result(None, "world", world, "none")
    key = str(region).strip()
    zone = zones.get(key.lower())
    if zone is not None:
        if "carbon_intensity_g_per_kwh" in zone:
            return _result(key, key.lower(), zone, None)
        country = str(zone.get("country", "")).upper()
        if country in countries:
            return _result(key, country, countries[country], "country")
        return _world_fallback(key, world, path or regions_path())
    if key.upper() in countries:
        return _result(key, key.upper(), countries[key.upper()], None)
    if key.lower() == "world":
        return _result(key, "world", world, None)
    return _world_fallback(key, world, path or regions_path())


def _world_fallback(region: str, world: dict[str, Any], path: Path) -> CarbonIntensity:
    result = _result(region, "world", world, "world")
    logger.warning("Region %r has no carbon intensity in %s, so the world average of %g g "
                   "CO2e/kWh is used. Give a region listed there or set "
                   "carbon_intensity_g_per_kwh.", region, path,
                   result.carbon_intensity_g_per_kwh)
    return result


def _result(requested: str | None, used: str, entry: dict[str, Any],
            fallback: str | None) -> CarbonIntensity:
    year = entry.get("year")
    return CarbonIntensity(
        requested=requested, used=used,
        carbon_intensity_g_per_kwh=float(entry["carbon_intensity_g_per_kwh"]),
        source=str(entry.get("source", "unknown")), year=int(year) if year else None,
        fallback=fallback,
    )
