"""The power timeline CSV: one row per sample per GPU.

Columns: time_s (since the window started), gpu_index, gpu_uuid, source ("nvml" or
"simulated"), energy_j (counter reading minus its first reading), power_w
(instantaneous), power_average_w (one-second average), sm_clock_mhz, temperature_c and
missing (the queries without a value, separated by ";"). Missing values are empty cells,
never 0.
"""

from __future__ import annotations

import csv
from pathlib import Path

from energaizer.fileio import write_atomically
from energaizer.measure.sampler import DeviceSamples

COLUMNS = ("time_s", "gpu_index", "gpu_uuid", "source", "energy_j", "power_w",
           "power_average_w", "sm_clock_mhz", "temperature_c", "missing")


def _cell(value: float | None) -> str:
    return "" if value is None else repr(round(value, 6))


def write_timeline(series: list[DeviceSamples], start_s: float, path: str | Path) -> Path:
    """Write every sample of every GPU to `path` and return it."""
    return write_atomically(path, lambda target: _write_rows(series, start_s, target))


def _write_rows(series: list[DeviceSamples], start_s: float, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(COLUMNS)
        for item in series:
            device = item.device
            source = "simulated" if getattr(device, "simulated", False) else "nvml"
            first_energy = next((s.get("energy") for s in item.samples
                                 if s.get("energy") is not None), None)
            for sample in item.samples:
                energy = sample.get("energy")
                relative = None if energy is None or first_energy is None else energy - first_energy
                writer.writerow([
                    _cell(sample.time_s - start_s), device.index, device.uuid, source,
                    _cell(relative), _cell(sample.get("power_instant")),
                    _cell(sample.get("power_average")), _cell(sample.get("sm_clock")),
                    _cell(sample.get("temperature")), ";".join(sorted(sample.missing)),
                ])
