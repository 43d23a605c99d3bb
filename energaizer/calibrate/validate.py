"""Predict every row of a measurement set and report the errors.

Errors are mean absolute percentage errors (MAPE, in percent) of time per pass, average
power and energy per pass, overall, per GPU and per model.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from energaizer.calibrate.measurements import Measurement, read_measurements
from energaizer.calibrate.profile import calibration_for
from energaizer.hardware.profiles import load_profile
from energaizer.power.simulate import simulate_workload
from energaizer.workload.build import model_workload

VALIDATION_SCHEMA = "energaizer.validation/1"


@dataclass(frozen=True)
class RowPrediction:
    """A measured row next to its prediction."""

    measurement: Measurement
    time_s: float
    energy_j: float
    calibration: str = ""
    fitted_on_file: str = ""  # file name of the measurements the calibration was fitted on

    @property
    def power_w(self) -> float:
        return self.energy_j / self.time_s if self.time_s > 0 else 0.0


def _percent_errors(predicted: list[float], measured: list[float]) -> np.ndarray:
    return 100.0 * np.abs(np.array(predicted) - np.array(measured)) / np.array(measured)


def summarize(predictions: list[RowPrediction]) -> dict[str, Any]:
    """MAPE of time, power and energy over the rows, and per GPU and per model."""

    def block(items: list[RowPrediction]) -> dict[str, Any]:
        return {
            "rows": len(items),
            "time_mape": float(_percent_errors([p.time_s for p in items],
                                               [p.measurement.time_s for p in items]).mean()),
            "power_mape": float(_percent_errors([p.power_w for p in items],
                                                [p.measurement.power_w for p in items]).mean()),
            "energy_mape": float(_percent_errors([p.energy_j for p in items],
                                                 [p.measurement.energy_j for p in items]).mean()),
        }

    by_gpu: dict[str, list[RowPrediction]] = defaultdict(list)
    by_model: dict[str, list[RowPrediction]] = defaultdict(list)
    for prediction in predictions:
        by_gpu[prediction.measurement.gpu].append(prediction)
        by_model[prediction.measurement.model].append(prediction)
    summary = {"schema": VALIDATION_SCHEMA, **block(predictions)}
    summary["per_gpu"] = {gpu: block(items) for gpu, items in sorted(by_gpu.items())}
    summary["per_model"] = {model: block(items) for model, items in sorted(by_model.items())}
    return summary


def predict_rows(rows: list[Measurement], calibration_path: str | Path | None = None) -> list[RowPrediction]:
    """Predict each row on its GPU and clock with that GPU's calibration."""
    predictions = []
    for row in rows:
        profile = load_profile(row.gpu)
        calibration = calibration_for(profile, calibration_path)
        workload = model_workload(row.model, batch=row.batch, seq=row.seq, dtype=row.dtype,
                                  phase=row.phase, attention=row.attention)
        run = simulate_workload(workload, profile, calibration, row.clock_mhz)
        predictions.append(RowPrediction(row, run.duration_s, run.energy_j, calibration.kind,
                                         fitted_file_name(calibration.fitted_on)))
    return predictions


def fitted_file_name(fitted_on: dict[str, Any]) -> str:
    """Return the file name in a calibration's `fitted_on["file"]`, or "" when none.

    Shipped calibrations describe their source, as in "EnergAIzer ISPASS 2026
    measurements (a10_900mhz.csv)", so the name in the last brackets is taken. A fit made
    by `calibrate --from` stores the CSV path, so its last part is taken.
    """
    text = str(fitted_on.get("file") or "").strip()
    bracketed = re.search(r"\(([^()]+)\)\s*$", text)
    if bracketed:
        return bracketed.group(1).strip()
    return Path(text).name if text else ""


def validate_file(path: str | Path, calibration_path: str | Path | None = None) -> dict[str, Any]:
    """Predict every row of a measurement-set CSV and summarize the errors.

    `in_sample` counts the rows whose GPU's calibration was fitted on a file of this
    name, so their errors are in-sample, and gives that calibration's stored held-out
    errors per GPU.
    """
    predictions = predict_rows(read_measurements(path), calibration_path)
    summary = summarize(predictions)
    summary["file"] = str(path)
    summary["calibrations"] = sorted({p.calibration for p in predictions})
    summary["in_sample"] = _in_sample(predictions, Path(path).name, calibration_path)
    return summary


def _in_sample(predictions: list[RowPrediction], file_name: str,
               calibration_path: str | Path | None) -> dict[str, Any] | None:
    matching = [p for p in predictions if p.fitted_on_file == file_name]
    if not matching:
        return None
    gpus = sorted({p.measurement.gpu for p in matching})
    held_out = {}
    for gpu in gpus:
        validation = calibration_for(load_profile(gpu), calibration_path).validation
        held_out[gpu] = {"method": validation.get("method"), **validation.get("summary", {})}
    return {"rows": len(matching), "fitted_on": file_name, "gpus": gpus,
            "held_out": held_out}
