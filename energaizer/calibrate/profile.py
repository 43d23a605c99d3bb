"""Calibration profiles: fitted power coefficients and time corrections for one GPU.

A profile is JSON with `schema` "energaizer.calibration/1", the GPU identity, the
conditions it was measured under, the coefficients, what it was fitted on and its
cross-validated errors. Shipped profiles live in `calibration/<gpu id>.json`. A GPU with
no profile gets the default calibration: the fit of another GPU of its architecture, else
the reference GPU's, with its power coefficients carried over by each module's capacity
(bandwidth, peak FLOP/s, SMs x clock).
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import energaizer
from energaizer.errors import ProfileError
from energaizer.fileio import write_json_atomically
from energaizer.hardware.profiles import GpuProfile
from energaizer.perf import Corrections
from energaizer.perf.corrections import CorrectionKey, key_from_name, key_name
from energaizer.power.coefficients import PowerCoefficients, headroom_defaults

CALIBRATION_SCHEMA = "energaizer.calibration/1"
SUPPORTED_SCHEMAS = (CALIBRATION_SCHEMA,)
REFERENCE_GPU = "a100-pcie-40gb"
DEFAULT_DISPATCH_S = 12e-6  # eager PyTorch launch interval before any fit (estimate)


@dataclass
class Calibration:
    """Everything the estimator needs from measurements of one GPU."""

    gpu: str  # profile id
    power: PowerCoefficients
    corrections: dict[CorrectionKey, Corrections]
    dispatch_s: float  # CPU time per launch in eager mode, beyond its torch calls
    kind: str = "calibrated"  # "calibrated", "default" (scaled) or "uncalibrated"
    source: str = ""
    identity: dict[str, Any] = field(default_factory=dict)
    conditions: dict[str, Any] = field(default_factory=dict)
    fitted_on: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    call_s: float = 0.0  # CPU time per torch call made from Python in eager mode
    module_s: float = 0.0  # CPU time per nn.Module call in eager mode

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": CALIBRATION_SCHEMA,
            "gpu": self.gpu,
            "identity": self.identity,
            "conditions": self.conditions,
            "power": {"coefficients_w": self.power.to_dict()},
            "time": {
                "dispatch_s": self.dispatch_s,
                "call_s": self.call_s,
                "module_s": self.module_s,
                "corrections": {key_name(key): value.to_dict() for key, value in sorted(
                    self.corrections.items(), key=lambda item: key_name(item[0]))},
            },
            "fitted_on": self.fitted_on,
            "validation": self.validation,
            "created": datetime.date.today().isoformat(),
            "energaizer_version": energaizer.__version__,
        }


def calibration_from_dict(data: Any, where: str) -> Calibration:
    """Build a Calibration from parsed JSON; ProfileError names what is wrong."""
    if not isinstance(data, dict):
        raise ProfileError(f"{where}: a calibration profile must be a JSON object.")
    schema = data.get("schema")
    if schema not in SUPPORTED_SCHEMAS:
        raise ProfileError(
            f"{where}: calibration schema {schema!r} is not supported; this energaizer reads "
            f"{', '.join(SUPPORTED_SCHEMAS)}. Refit it with `energaizer calibrate --from`."
        )
    try:
        corrections = {
            key_from_name(name): Corrections.from_dict(values)
            for name, values in data["time"]["corrections"].items()
        }
        return Calibration(
            gpu=str(data["gpu"]),
            power=PowerCoefficients({k: float(v) for k, v in data["power"]["coefficients_w"].items()}),
            corrections=corrections,
            dispatch_s=float(data["time"]["dispatch_s"]),
            call_s=float(data["time"].get("call_s", 0.0)),
            module_s=float(data["time"].get("module_s", 0.0)),
            kind="calibrated",
            source=where,
            identity=dict(data.get("identity", {})),
            conditions=dict(data.get("conditions", {})),
            fitted_on=dict(data.get("fitted_on", {})),
            validation=dict(data.get("validation", {})),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ProfileError(f"{where}: missing or invalid calibration field: {error}.") from None


def load_calibration(path: str | Path) -> Calibration:
    """Read a calibration profile file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(f"{path}: calibration profile not found.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProfileError(f"{path}: not a readable calibration profile: {error}.") from None
    return calibration_from_dict(data, str(path))


def save_calibration(calibration: Calibration, path: str | Path) -> None:
    """Write a calibration profile atomically: a killed writer leaves the old file."""
    write_json_atomically(calibration.to_dict(), Path(path))


def calibrations_dir() -> Path:
    """Return the folder of shipped calibration profiles: the installed wheel's, else the
    repository's."""
    packaged = Path(energaizer.__file__).parent / "_calibration"
    if packaged.is_dir():
        return packaged
    return Path(energaizer.__file__).parent.parent / "calibration"


def calibration_warnings(calibration: Calibration, profile: GpuProfile) -> list[str]:
    """Return the warnings an estimate on `profile` with `calibration` carries: no fit of
    its own, or a fit made on another GPU."""
    if calibration.kind != "calibrated":
        return [f"{profile.id} has no measured calibration; using {calibration.source}."]
    if calibration.gpu != profile.id:
        return [f"The calibration {calibration.source} was fitted on {calibration.gpu}, not "
                f"{profile.id}: its coefficients and its validation errors belong to that "
                "GPU."]
    return []


def estimate_provenance(calibration: Calibration, warnings: list[str]) -> dict[str, Any]:
    """Return an estimate's provenance: which calibration it used, of what kind, with the
    calibration's validation summary and the estimate's warnings."""
    return {
        "power_model": "calibrated" if calibration.kind == "calibrated" else "default",
        "calibration": calibration.source or calibration.kind,
        "calibration_kind": calibration.kind,
        "validation": calibration.validation.get("summary", {}),
        "warnings": warnings,
    }


def calibration_for(profile: GpuProfile, path: str | Path | None = None) -> Calibration:
    """Return the calibration to use for `profile`: the file at `path` when given, the
    shipped fit for this GPU, else the default scaled from the reference GPU's fit."""
    if path is not None:
        return load_calibration(path)
    shipped = calibrations_dir() / f"{profile.id}.json"
    if shipped.is_file():
        return load_calibration(shipped)
    return default_calibration(profile)


# The capacity each power module's coefficient scales with when a fit is carried from
# the reference GPU to another. At equal energy per operation, a module that can do
# twice the work per second draws twice the power at full activity.
def _module_capacity(profile: GpuProfile) -> dict[str, float]:
    sm_clock = profile.sms * profile.boost_clock_mhz
    return {
        "dram": profile.memory_bandwidth_gb_s,
        "tensor": profile.peak_flops("bf16", tensor_cores=True),
        "fp32": profile.peak_flops("fp32", tensor_cores=False),
        "active": sm_clock,
        "l2": sm_clock,
        "smem": sm_clock,
        "sfu": sm_clock,
    }


def scaled_coefficients(reference: PowerCoefficients, source: GpuProfile,
                        target: GpuProfile) -> tuple[PowerCoefficients, float]:
    """Carry coefficients from `source` to `target` by module capacity, then shrink them
    all when their sum would exceed the target's headroom by more than it does on the
    source. Returns the coefficients and the shrink factor (1.0 when none was needed)."""
    source_capacity, target_capacity = _module_capacity(source), _module_capacity(target)
    scaled = {
        module: value * target_capacity[module] / source_capacity[module]
        for module, value in reference.to_dict().items()
    }
    source_headroom = max(source.power_limit_w - source.idle_power_w, 1.0)
    target_headroom = max(target.power_limit_w - target.idle_power_w, 1.0)
    allowed = target_headroom * sum(reference.to_dict().values()) / source_headroom
    total = sum(scaled.values())
    shrink = min(1.0, allowed / total) if total > 0 else 1.0
    return PowerCoefficients({m: v * shrink for m, v in scaled.items()}), shrink


def default_calibration(profile: GpuProfile) -> Calibration:
    """Return the fit of the closest calibrated GPU carried to `profile` by module
    capacity: another GPU of the same architecture when one ships a fit, else the
    reference GPU."""
    return carried_calibration(profile, reference_gpu_for(profile))


def reference_gpu_for(profile: GpuProfile) -> str:
    """Return the id of the shipped fit a GPU without its own fit borrows: REFERENCE_GPU
    when it is of the same architecture (chip family), else the first shipped fit by id
    of that architecture, else REFERENCE_GPU."""
    from energaizer.hardware.profiles import load_profile

    if load_profile(REFERENCE_GPU).architecture == profile.architecture:
        return REFERENCE_GPU
    for path in sorted(calibrations_dir().glob("*.json")):
        if path.stem == profile.id:
            continue
        try:
            other = load_profile(path.stem)
        except ProfileError:
            continue
        if other.architecture == profile.architecture:
            return other.id
    return REFERENCE_GPU


def carried_calibration(profile: GpuProfile, reference_id: str) -> Calibration:
    """Return the fit of `reference_id` carried to `profile` by module capacity, or
    built-in headroom shares when that fit is not installed."""
    from energaizer.hardware.profiles import load_profile

    reference_path = calibrations_dir() / f"{reference_id}.json"
    if not reference_path.is_file():
        return Calibration(
            gpu=profile.id,
            power=headroom_defaults(profile.power_limit_w, profile.idle_power_w),
            corrections={},
            dispatch_s=DEFAULT_DISPATCH_S,
            kind="uncalibrated",
            source="built-in shares of the power headroom; no fitted reference available",
        )
    reference = load_calibration(reference_path)
    power, shrink = scaled_coefficients(reference.power, load_profile(reference_id), profile)
    note = "" if shrink == 1.0 else f", shrunk by {shrink:.2f} to fit its power headroom"
    return Calibration(
        gpu=profile.id,
        power=power,
        corrections=dict(reference.corrections),
        dispatch_s=reference.dispatch_s,
        call_s=reference.call_s,
        module_s=reference.module_s,
        kind="default",
        source=(f"default: the {reference_id} fit with each module's coefficient scaled by "
                f"the GPU's capacity for it{note}"),
        validation=reference.validation,
    )
