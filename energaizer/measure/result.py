"""Results of a measurement: per GPU, and for the whole run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

MEASURE_SCHEMA = "energaizer.measure/1"

COUNTER = "counter"
POWER_INTEGRATION = "power_integration"
UNAVAILABLE = "unavailable"
INSUFFICIENT_SAMPLES = "insufficient samples"


@dataclass
class GpuEnergy:
    """Energy of one physical GPU over the measured window.

    `energy_j` is None when neither the counter nor enough power samples were available
    (`status` then gives the reason). `scope` names what the reading covers: the whole board of
    GPU `uuid`. When the user named a MIG slice, `shared` is True and the readings are the
    parent GPU's. `attributed_energy_j` applies the split rule the user chose, so it
    equals `energy_j` under the rule "none".
    """

    index: int
    uuid: str
    name: str
    simulated: bool
    request: str
    method: str  # counter, power_integration or unavailable
    status: str  # ok, insufficient samples or unavailable
    energy_j: float | None
    duration_s: float
    avg_power_w: float | None
    peak_power_w: float | None
    coverage: float  # share of the window the method covered, 0 to 1
    window_s: tuple[float, float]
    scope: str
    counter_energy_j: float | None = None
    integrated_energy_j: float | None = None
    disagreement: float | None = None  # (integrated - counter) / counter
    counter_update_period_s: float | None = None
    counter_resets: int = 0
    samples: int = 0
    gaps: list[dict[str, Any]] = field(default_factory=list)
    retries: int = 0
    unsupported: list[str] = field(default_factory=list)
    shared: bool = False
    mig_uuid: str | None = None
    mig_split: str = "none"
    attributed_energy_j: float | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class MeasureResult:
    """A measured run: one GpuEnergy per physical GPU and their disjoint total."""

    gpus: list[GpuEnergy]
    duration_s: float
    energy_j: float | None  # sum over GPUs of attributed energy; None if any is missing
    interval_s: float
    simulated: bool
    command: list[str] | None = None
    exit_code: int | None = None
    timeline_csv: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return "simulated" if self.simulated else "measured"

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": MEASURE_SCHEMA,
            "label": self.label,
            "simulated": self.simulated,
            "command": self.command,
            "exit_code": self.exit_code,
            "duration_s": self.duration_s,
            "energy_j": self.energy_j,
            "interval_s": self.interval_s,
            "gpus": [asdict(gpu) for gpu in self.gpus],
            "timeline_csv": self.timeline_csv,
            "provenance": {"warnings": list(self.warnings)},
        }
