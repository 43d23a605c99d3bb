"""Supply voltage and idle power as functions of the SM clock.

Voltage is flat at its minimum up to a knee clock and rises linearly to its value at the
maximum clock: v(x) = max(v_min, v_min + (1 - v_min) (x - knee) / (1 - knee)), with x the
clock over the maximum clock and v relative to the voltage at the maximum clock. Idle
power is a constant part plus a clock-tree part that scales with V^2 f and a leakage part
that grows with V^3. GPUs with a fitted table in `profiles/dvfs/` use it; others use the
default curve scaled to the profile's idle power at its maximum clock.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

from energaizer.errors import ProfileError
from energaizer.hardware.profiles import GpuProfile, profiles_dir

DVFS_SCHEMA = "energaizer.dvfs/1"


@dataclass(frozen=True)
class DvfsCurves:
    """Voltage and idle power against clock for one GPU."""

    max_clock_mhz: float
    voltage_min: float  # relative to the voltage at the maximum clock
    voltage_knee: float  # clock of the knee, relative to the maximum clock
    idle_constant_w: float
    idle_clock_w: float  # the V^2 f part at the maximum clock
    idle_leakage_w: float  # the V^3 part at the maximum clock
    source: str

    def relative_voltage(self, clock_mhz: float) -> float:
        """Voltage at `clock_mhz` over the voltage at the maximum clock."""
        x = min(max(clock_mhz / self.max_clock_mhz, 0.0), 1.0)
        if x <= self.voltage_knee:
            return self.voltage_min
        rise = (x - self.voltage_knee) / (1.0 - self.voltage_knee)
        return self.voltage_min + (1.0 - self.voltage_min) * rise

    def dynamic_scale(self, clock_mhz: float) -> float:
        """(V/V_max)^2 x (f/f_max): how switching power scales with the clock."""
        return self.relative_voltage(clock_mhz) ** 2 * clock_mhz / self.max_clock_mhz

    def idle_power_w(self, clock_mhz: float) -> float:
        """Power with no work at `clock_mhz` (clocks held, as between kernels in a job)."""
        voltage = self.relative_voltage(clock_mhz)
        return (self.idle_constant_w + self.idle_clock_w * self.dynamic_scale(clock_mhz)
                + self.idle_leakage_w * voltage**3)


# Default curve shape: the mean of the fits to the A100-PCIe-40GB and A100-SXM4-80GB
# tables (see profiles/dvfs/), with idle power split in the same proportions.
DEFAULT_VOLTAGE_MIN = 0.79
DEFAULT_VOLTAGE_KNEE = 0.79
DEFAULT_IDLE_SHARES = (0.54, 0.18, 0.28)  # constant, clock tree, leakage at max clock


def dvfs_curves(profile: GpuProfile) -> DvfsCurves:
    """Return the fitted curves of `profile`, else the default curve scaled to it."""
    return _curves(profile.id, profile.boost_clock_mhz, profile.idle_power_w)


@functools.lru_cache(maxsize=256)
def _curves(profile_id: str, boost_clock_mhz: float, idle_power_w: float) -> DvfsCurves:
    path = profiles_dir() / "dvfs" / f"{profile_id}.yaml"
    if path.is_file():
        return _read_curves(path, boost_clock_mhz)
    constant, clock, leakage = (share * idle_power_w for share in DEFAULT_IDLE_SHARES)
    return DvfsCurves(
        max_clock_mhz=boost_clock_mhz,
        voltage_min=DEFAULT_VOLTAGE_MIN,
        voltage_knee=DEFAULT_VOLTAGE_KNEE,
        idle_constant_w=constant,
        idle_clock_w=clock,
        idle_leakage_w=leakage,
        source="default curve (mean shape of the A100 fits), scaled to the profile's idle power",
    )


def _read_curves(path: Path, boost_clock_mhz: float) -> DvfsCurves:
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    if not isinstance(data, dict) or data.get("schema") != DVFS_SCHEMA:
        raise ProfileError(f"{path}: not a DVFS table of schema {DVFS_SCHEMA}.")
    try:
        return DvfsCurves(
            max_clock_mhz=float(data.get("max_clock_mhz", boost_clock_mhz)),
            voltage_min=float(data["voltage"]["min_relative"]),
            voltage_knee=float(data["voltage"]["knee_relative"]),
            idle_constant_w=float(data["idle_power"]["constant_w"]),
            idle_clock_w=float(data["idle_power"]["clock_tree_w"]),
            idle_leakage_w=float(data["idle_power"]["leakage_w"]),
            source=str(data.get("source", path.name)),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ProfileError(f"{path}: missing or invalid field {error}.") from None
