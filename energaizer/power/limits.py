"""Check a requested SM clock and power limit against what a GPU profile can run."""

from __future__ import annotations

import math

from energaizer.errors import InputError
from energaizer.hardware.profiles import GpuProfile
from energaizer.power.dvfs import dvfs_curves

# The lowest SM clock an estimate accepts, as a share of the profile's maximum clock.
# Estimate: NVIDIA data-center GPUs list supported graphics clocks down to roughly a
# tenth of their maximum, and the voltage and idle-power curves are not defined below.
MIN_CLOCK_SHARE = 0.1


def lowest_clock_mhz(profile: GpuProfile) -> float:
    """Return the lowest SM clock an estimate on `profile` accepts."""
    return MIN_CLOCK_SHARE * profile.boost_clock_mhz


def check_operating_point(profile: GpuProfile, clock_mhz: float | None,
                          power_limit_w: float | None) -> None:
    """Raise InputError unless the clock and power limit are ones `profile` can run at.

    The clock must lie between lowest_clock_mhz and the maximum SM clock. The power limit
    may only lower the profile's limit, and must stay above the power the GPU draws with
    no work at its lowest clock, because no clock could meet a lower one.
    """
    if clock_mhz is not None:
        _check_number("clock_mhz", clock_mhz)
        lowest = lowest_clock_mhz(profile)
        if clock_mhz > profile.boost_clock_mhz * 1.001:
            raise InputError(f"clock_mhz {clock_mhz:g} is above the maximum SM clock of "
                             f"{profile.id} ({profile.boost_clock_mhz:g} MHz).")
        if clock_mhz < lowest:
            raise InputError(f"clock_mhz {clock_mhz:g} is below the lowest SM clock estimated "
                             f"for {profile.id} ({lowest:g} MHz); choose {lowest:g} to "
                             f"{profile.boost_clock_mhz:g} MHz.")
    if power_limit_w is not None:
        _check_number("power_limit_w", power_limit_w)
        if power_limit_w > profile.power_limit_w * 1.001:
            raise InputError(f"power_limit_w {power_limit_w:g} is above the {profile.id} "
                             f"profile's limit of {profile.power_limit_w:g} W; a limit can "
                             "only lower it.")
        idle_w = dvfs_curves(profile).idle_power_w(lowest_clock_mhz(profile))
        if power_limit_w <= idle_w:
            raise InputError(f"power_limit_w {power_limit_w:g} is at or below the "
                             f"{idle_w:.1f} W that {profile.id} draws with no work at its "
                             f"lowest clock, so no clock could meet it; choose a limit "
                             f"between {math.floor(idle_w) + 1} and {profile.power_limit_w:g} W.")


def _check_number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value!r}.")
    if value <= 0:
        raise InputError(f"{name} must be positive, got {value!r}.")


def raise_limit_unreachable(profile: GpuProfile, limit_w: float, clock_mhz: float,
                            power_w: float) -> None:
    """Raise InputError for a power limit the workload exceeds even at its lowest clock."""
    raise InputError(f"power_limit_w {limit_w:g} cannot be met on {profile.id}: even at "
                     f"{clock_mhz:.0f} MHz, the lowest clock available, this workload draws "
                     f"{power_w:.1f} W on average. Choose a higher limit.")
