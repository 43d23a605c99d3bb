"""Measure the energy of GPU work with NVML, or with a simulated GPU."""

from energaizer.measure.meter import Meter, measure_command
from energaizer.measure.result import GpuEnergy, MeasureResult

__all__ = ["GpuEnergy", "MeasureResult", "Meter", "measure_command"]
