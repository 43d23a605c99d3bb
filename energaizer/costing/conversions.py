"""Energy unit conversions for reports, each with its inverse for round-trip tests.

NVML reports power in mW and energy in mJ; some meters report uJ. Reports use J, kWh
and W. 1 kWh = 3.6e6 J.
"""

from __future__ import annotations

J_PER_KWH = 3.6e6


def mw_seconds_to_j(power_mw: float, duration_s: float) -> float:
    """Energy of a constant power in mW held for `duration_s` seconds, in joules."""
    return power_mw / 1e3 * duration_s


def j_to_kwh(energy_j: float) -> float:
    """Convert joules to kilowatt-hours."""
    return energy_j / J_PER_KWH


def kwh_to_j(energy_kwh: float) -> float:
    """Convert kilowatt-hours to joules."""
    return energy_kwh * J_PER_KWH


def mj_to_kwh(energy_mj: float) -> float:
    """Convert millijoules (the NVML energy counter) to kilowatt-hours."""
    return j_to_kwh(energy_mj / 1e3)


def kwh_to_mj(energy_kwh: float) -> float:
    """Convert kilowatt-hours to millijoules."""
    return kwh_to_j(energy_kwh) * 1e3


def uj_to_kwh(energy_uj: float) -> float:
    """Convert microjoules to kilowatt-hours."""
    return j_to_kwh(energy_uj / 1e6)


def kwh_to_uj(energy_kwh: float) -> float:
    """Convert kilowatt-hours to microjoules."""
    return kwh_to_j(energy_kwh) * 1e6


def mean_power_w(energy_j: float, duration_s: float) -> float:
    """Mean power over a window: total energy over duration, never the last sample.

    Raises ValueError for a window that is not positive.
    """
    if not duration_s > 0:
        raise ValueError(f"duration_s must be positive to average power, got {duration_s!r}.")
    return energy_j / duration_s
