"""Unit conversions used at the boundaries of the package.

Inside energaizer every quantity is SI with the unit in its name: seconds, joules, watts.
Trace timestamps are microseconds (`ts_us`, `dur_us`) until converted here.
"""

from __future__ import annotations

J_PER_WH = 3600.0
J_PER_KWH = 3.6e6
US_PER_S = 1e6


def us_to_s(value_us: float) -> float:
    """Convert microseconds to seconds."""
    return value_us / US_PER_S


def j_to_wh(energy_j: float) -> float:
    """Convert joules to watt-hours."""
    return energy_j / J_PER_WH


def j_to_kwh(energy_j: float) -> float:
    """Convert joules to kilowatt-hours."""
    return energy_j / J_PER_KWH


def mw_to_w(power_mw: float) -> float:
    """Convert milliwatts (NVML power readings) to watts."""
    return power_mw / 1e3


def mj_to_j(energy_mj: float) -> float:
    """Convert millijoules (the NVML energy counter) to joules."""
    return energy_mj / 1e3
