"""The estimate object returned by the Python API and printed by `estimate --json`.

Its fields are the JSON contract `energaizer.estimate/1`: SI units with the unit in each
name, and `sum(by_class[].energy_j) + idle_energy_j == energy_j`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from energaizer.units import j_to_wh

ESTIMATE_SCHEMA = "energaizer.estimate/1"


@dataclass
class GpuInfo:
    """The GPU an estimate is for."""

    name: str
    profile: str
    clock_mhz: float
    power_limit_w: float
    idle_power_w: float
    derived_profile: bool = False


@dataclass
class ClassEnergy:
    """Energy and busy time of one op class."""

    op_class: str
    kernels: int
    time_s: float
    energy_j: float


@dataclass
class StepEnergy:
    """Energy of one step, over its window on the GPU timeline."""

    step: str
    duration_s: float
    energy_j: float
    kernels: int
    inferred: bool = False


@dataclass
class KernelEnergy:
    """Energy of one kernel signature, summed over its launches."""

    name: str
    op_class: str
    count: int
    time_s: float
    energy_j: float
    avg_power_w: float


@dataclass
class Estimate:
    """Energy, power and time of a workload on one GPU, or summed over the ranks of a
    multi-GPU job (then `ranks` holds one estimate per rank)."""

    gpu: GpuInfo
    source: dict[str, Any]
    energy_j: float
    duration_s: float
    avg_power_w: float
    busy_s: float
    idle_s: float
    idle_energy_j: float
    by_class: list[ClassEnergy]
    steps: list[StepEnergy]
    top_kernels: list[KernelEnergy]
    provenance: dict[str, Any]
    uncertainty: dict[str, float]
    ranks: list[Estimate] = field(default_factory=list)
    lower_bound: bool = False  # True when part of the input was missing (truncated trace)
    schema: str = ESTIMATE_SCHEMA

    @property
    def energy_wh(self) -> float:
        return j_to_wh(self.energy_j)

    @property
    def warnings(self) -> list[str]:
        return list(self.provenance.get("warnings", []))

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON contract as plain Python data, schema first."""
        data = asdict(self)
        ordered = {"schema": data.pop("schema")}
        ordered.update(data)
        ordered["energy_wh"] = self.energy_wh
        return ordered
