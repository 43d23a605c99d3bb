"""Calibrate from a recorded measurement set (`energaizer calibrate --from FILE`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from energaizer.calibrate.fit import fit_calibration, leave_one_model_out, prepare_rows
from energaizer.calibrate.measurements import read_measurements
from energaizer.calibrate.profile import save_calibration
from energaizer.calibrate.validate import RowPrediction, summarize
from energaizer.errors import InputError
from energaizer.hardware.profiles import load_profile
from energaizer.progress import ProgressCallback


def calibrate_from_file(path: str | Path, gpu: str | None = None,
                        output: str | Path | None = None,
                        progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Fit a calibration to the rows of one GPU, cross-validate it leaving one model out
    at a time, and write the profile (to `output`, default `<gpu id>.json` here).

    `progress` is called with (fits done, fits to do): the full fit and one per held-out
    model.
    """
    rows = read_measurements(path)
    gpus = sorted({row.gpu for row in rows})
    if gpu is None:
        if len(gpus) > 1:
            raise InputError(f"{path}: rows of several GPUs ({', '.join(gpus)}); pick one with --gpu.")
        gpu = gpus[0]
    profile = load_profile(gpu)
    selected = [row for row in rows if load_profile(row.gpu).id == profile.id]
    if not selected:
        raise InputError(f"{path}: no rows for GPU {profile.id}; the file has {', '.join(gpus)}.")

    models = {row.model for row in selected}
    fits = 1 + (len(models) if len(models) >= 2 else 0)
    done = 0

    def one_fit_done() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, fits)

    if progress is not None:
        progress(0, fits)
    prepared = prepare_rows(selected, profile) if len(selected) >= 4 else None
    calibration = fit_calibration(selected, profile, source=str(path), prepared=prepared)
    one_fit_done()
    if len(models) >= 2:
        held_out = leave_one_model_out(prepared, profile, on_model=one_fit_done)
        summary = summarize([RowPrediction(m, t, e) for m, t, e in held_out])
        calibration.validation = {"method": "leave-one-model-out", "summary": _headline(summary),
                                  "per_model": summary["per_model"]}
    else:
        summary = None
        calibration.validation = {"method": "none: one model only, so no held-out model"}
    target = Path(output) if output else Path(f"{profile.id}.json")
    save_calibration(calibration, target)
    return {"gpu": profile.id, "output": str(target), "rows": len(selected),
            "validation": _headline(summary) if summary else {"rows": 0, "time_mape": float("nan"),
                                                               "power_mape": float("nan"),
                                                               "energy_mape": float("nan")},
            "calibration": calibration.to_dict()}


def _headline(summary: dict[str, Any]) -> dict[str, Any]:
    return {key: summary[key] for key in ("rows", "time_mape", "power_mape", "energy_mape")}
