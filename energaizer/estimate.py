"""The estimate entry point shared by the Python API and the CLI.

One source per call: a profiler trace, a model (preset name or config.json) with a
workload shape, or an op-list file. With no source at all, the embedded default runs: a
preset on a GPU profile, so a fresh install has something to show.
"""

from __future__ import annotations

import math
from pathlib import Path

from energaizer.errors import InputError
from energaizer.power.limits import check_operating_point
from energaizer.progress import ProgressCallback
from energaizer.results import Estimate

DEFAULT_MODEL = "llama-3.1-8b"
DEFAULT_GPU = "a100-pcie-40gb"
DEFAULT_BATCH = 1
DEFAULT_SEQ = 1024
DTYPES = ("fp32", "fp16", "bf16")
PHASES = ("prefill", "decode", "train", "forward")
ATTENTIONS = ("default", "eager")


def estimate(
    *,
    trace: str | Path | None = None,
    model: str | None = None,
    workload: str | Path | None = None,
    batch: int | None = None,
    seq: int | None = None,
    dtype: str = "bf16",
    phase: str = "prefill",
    attention: str = "default",
    gpu: str | None = None,
    clock_mhz: float | None = None,
    power_limit_w: float | None = None,
    calibration: str | Path | None = None,
    lenient: bool = False,
    progress: ProgressCallback | None = None,
) -> Estimate:
    """Estimate energy, power and time of one pass of a workload on a GPU.

    Give one of `trace` (a profiler trace file, folder or tar archive), `model` (a preset
    name or a Hugging Face config.json path, with `batch`, `seq`, `dtype`, `phase` and
    `attention`) or `workload` (an op-list JSON file). `gpu` names a GPU profile (for a
    trace it overrides, and retargets to, the recorded GPU). `clock_mhz` sets the SM
    clock; `power_limit_w` caps power below the profile's limit; `calibration` points to
    a calibration profile file. `progress` is called with (done, total) while a trace is
    read: bytes of a trace file, or traces of a folder. Raises InputError (or a
    subclass) on bad input.
    """
    sources = [name for name, value in (("trace", trace), ("model", model), ("workload", workload))
               if value is not None]
    if len(sources) > 1:
        raise InputError(f"Give one source to estimate, not {' and '.join(sources)}.")
    _check_options(dtype, phase, attention, batch, seq, clock_mhz, power_limit_w)
    if trace is not None:
        from energaizer.estimators.trace import estimate_trace

        return estimate_trace(trace, gpu=gpu, lenient=lenient, clock_mhz=clock_mhz,
                              power_limit_w=power_limit_w, calibration=calibration,
                              progress=progress)
    return _estimate_workload_source(model, workload, batch, seq, dtype, phase, attention,
                                     gpu, clock_mhz, power_limit_w, calibration)


def _estimate_workload_source(model, workload, batch, seq, dtype, phase, attention, gpu,
                              clock_mhz, power_limit_w, calibration) -> Estimate:
    from energaizer.calibrate.profile import calibration_for
    from energaizer.estimators.workload import estimate_workload
    from energaizer.hardware.profiles import load_profile
    from energaizer.workload.build import model_workload, op_list_workload

    notes = []
    if model is None and workload is None:
        model = DEFAULT_MODEL
        batch, seq, gpu = batch or DEFAULT_BATCH, seq or DEFAULT_SEQ, gpu or DEFAULT_GPU
        notes.append(
            f"No trace, model or workload was given, so the embedded default ran: {model} "
            f"{phase} at batch {batch}, sequence {seq}, {dtype}, on {gpu}."
        )
    if gpu is None:
        gpu = DEFAULT_GPU
        notes.append(f"No --gpu was given; the estimate is for the default GPU {gpu}.")
    profile = load_profile(gpu)
    if workload is not None:
        built = op_list_workload(workload)
        source = {"kind": "workload", "path": str(workload)}
    else:
        batch = batch or DEFAULT_BATCH
        seq = seq or DEFAULT_SEQ
        built = model_workload(model, batch=batch, seq=seq, dtype=dtype, phase=phase,
                               attention=attention)
        source = {"kind": "model", "model": model, "batch": batch, "seq": seq,
                  "dtype": dtype, "phase": phase, "attention": attention}
    check_operating_point(profile, clock_mhz, power_limit_w)
    result = estimate_workload(built, profile, calibration_for(profile, calibration),
                               clock_mhz, power_limit_w, source)
    result.provenance["warnings"] = notes + result.provenance["warnings"]
    return result


def _check_options(dtype, phase, attention, batch, seq, clock_mhz, power_limit_w) -> None:
    if dtype not in DTYPES:
        raise InputError(f"dtype {dtype!r} is invalid; expected one of {', '.join(DTYPES)}.")
    if phase not in PHASES:
        raise InputError(f"phase {phase!r} is invalid; expected one of {', '.join(PHASES)}.")
    if attention not in ATTENTIONS:
        raise InputError(f"attention {attention!r} is invalid; expected default or eager.")
    for name, value in (("batch", batch), ("seq", seq)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InputError(f"{name} must be a whole number of at least 1, got {value!r}.")
    for name, value in (("clock_mhz", clock_mhz), ("power_limit_w", power_limit_w)):
        valid = (not isinstance(value, bool) and isinstance(value, (int, float))
                 and math.isfinite(value) and value > 0)
        if value is not None and not valid:
            raise InputError(f"{name} must be a positive finite number, got {value!r}.")
