"""Power coefficients: watts each GPU module draws at full activity.

The dynamic power of an op is sum over modules m of c_m x a_m, where a_m is the share of
the op's time module m is busy. The core modules are L2, shared memory, tensor cores,
CUDA cores, special-function units, and `active`, which is 1 whenever a kernel runs.
They scale with (V/V_max)^2 x f/f_max. The DRAM term does not, because memory runs on
its own clock. Coefficients are at the GPU's maximum SM clock and never negative.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CORE_MODULES = ("active", "l2", "smem", "tensor", "fp32", "sfu")
POWER_MODULES = ("dram",) + CORE_MODULES


@dataclass(frozen=True)
class PowerCoefficients:
    """Watts per module at full activity and the maximum SM clock."""

    watts: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.watts) - set(POWER_MODULES)
        if unknown:
            raise ValueError(f"Unknown power modules: {', '.join(sorted(unknown))}.")
        negative = [name for name, value in self.watts.items() if value < 0]
        if negative:
            raise ValueError(f"Power coefficients must not be negative: {', '.join(negative)}.")

    def get(self, module: str) -> float:
        return float(self.watts.get(module, 0.0))

    def scaled(self, factor: float) -> PowerCoefficients:
        """Return every coefficient multiplied by `factor`."""
        return PowerCoefficients({name: value * factor for name, value in self.watts.items()})

    def to_dict(self) -> dict[str, float]:
        return {name: float(self.watts.get(name, 0.0)) for name in POWER_MODULES}


def headroom_defaults(power_limit_w: float, idle_power_w: float) -> PowerCoefficients:
    """Coefficients as shares of a GPU's headroom above idle (limit minus idle power).

    Used only when no fitted reference calibration is installed. The shares are
    engineering assumptions, so estimates made with them are labelled uncalibrated.
    """
    headroom = max(power_limit_w - idle_power_w, 0.0)
    return PowerCoefficients({name: share * headroom for name, share in DEFAULT_SHARES.items()})


# Shares of the headroom (power limit - idle) drawn by each module at full activity:
# assumptions, not measurements.
DEFAULT_SHARES = {
    "dram": 0.30,
    "active": 0.25,
    "l2": 0.10,
    "smem": 0.05,
    "tensor": 0.35,
    "fp32": 0.25,
    "sfu": 0.05,
}
