"""Estimate one chunk of sweep items inside a worker process.

The items of one (model, phase, dtype, attention, batch, seq) run the same workload on
every GPU and clock, so a chunk builds that workload once and each item only simulates
it on its GPU at its clock. This calls the functions `energaizer.estimate` calls, with
the same arguments, so the numbers are the ones a single estimate gives. The sweep tests
compare sampled rows with single estimates. Trace items, items with options this path
does not handle, and every item that fails on it go through `energaizer.estimate`
itself, so error rows carry the public API's message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from energaizer.calibrate.profile import Calibration, calibration_for
from energaizer.errors import EnergaizerError
from energaizer.estimate import DEFAULT_BATCH, DEFAULT_GPU, DEFAULT_SEQ, _check_options
from energaizer.hardware.profiles import GpuProfile, load_profile
from energaizer.power.limits import check_operating_point
from energaizer.power.simulate import simulate_workload
from energaizer.workload.build import model_workload
from energaizer.workload.workload import Workload

logger = logging.getLogger(__name__)

# The keys of the items a model grid expands to. An item with any other key (a trace,
# a power limit) takes the public path.
SHARED_PATH_KEYS = frozenset(
    {"model", "phase", "dtype", "attention", "gpu", "batch", "seq", "clock_mhz"}
)


def estimate_chunk(items: list[dict[str, Any]], calibration: str | None) -> list[dict[str, Any]]:
    """Estimate a chunk of items in one worker task, sharing workloads between items."""
    shared = SharedInputs(calibration)
    return [_estimate_with_shared(item, shared) for item in items]


def estimate_item(item: dict[str, Any], calibration: str | None) -> dict[str, Any]:
    """Estimate one item through `energaizer.estimate` and return its row, with `error`
    set instead of raising."""
    import energaizer

    row = dict(item)
    try:
        result = energaizer.estimate(**item, calibration=calibration)
    except EnergaizerError as error:
        row["error"] = f"{type(error).__name__}: {error}"
        return row
    except Exception as error:  # noqa: BLE001 - one broken item must not stop the sweep
        logger.warning("sweep item %s failed unexpectedly: %r", item, error)
        row["error"] = f"{type(error).__name__}: {error}"
        return row
    items_per_pass = item.get("batch") or max(1, len(result.steps))
    return _finished_row(item, result.gpu.profile, result.energy_j, result.duration_s,
                         result.avg_power_w, items_per_pass, result.gpu.clock_mhz)


def _finished_row(item: dict[str, Any], profile_id: str, energy_j: float, duration_s: float,
                  avg_power_w: float, items_per_pass: int, clock_used_mhz: float) -> dict[str, Any]:
    row = dict(item)
    row.update(
        gpu_profile=profile_id,
        # The clock the estimate ran at: the requested one unless power capping lowered it.
        clock_used_mhz=clock_used_mhz,
        energy_j=energy_j,
        duration_s=duration_s,
        avg_power_w=avg_power_w,
        items_per_pass=items_per_pass,
        energy_per_item_j=energy_j / items_per_pass,
        time_per_item_s=duration_s / items_per_pass,
        error=None,
    )
    return row


@dataclass
class SharedInputs:
    """Workloads and calibrations built once per chunk and reused by its items.

    A workload that could not be built is stored as None, so the items that need it go
    straight to the public path, which raises the error again for their rows.
    """

    calibration: str | None
    workloads: dict[tuple, Workload | None] = field(default_factory=dict)
    calibrations: dict[str, Calibration] = field(default_factory=dict)

    def workload(self, model: str, batch: int, seq: int, dtype: str, phase: str,
                 attention: str) -> Workload | None:
        """Return the workload of one pass, built on first use, or None when building it
        failed."""
        key = (model, batch, seq, dtype, phase, attention)
        if key not in self.workloads:
            try:
                self.workloads[key] = model_workload(model, batch=batch, seq=seq, dtype=dtype,
                                                     phase=phase, attention=attention)
            except Exception:  # noqa: BLE001 - the public path raises it again for the row
                self.workloads[key] = None
        return self.workloads[key]

    def calibration_for(self, profile: GpuProfile) -> Calibration:
        """Return the calibration `energaizer.estimate` uses for `profile`."""
        found = self.calibrations.get(profile.id)
        if found is None:
            found = self.calibrations[profile.id] = calibration_for(profile, self.calibration)
        return found


def _estimate_with_shared(item: dict[str, Any], shared: SharedInputs) -> dict[str, Any]:
    """Estimate one item from shared inputs, or through the public path when it cannot."""
    row = None
    if item.get("model") is not None and set(item) <= SHARED_PATH_KEYS:
        try:
            row = _shared_row(item, shared)
        except Exception as error:  # noqa: BLE001 - the public path reports the error
            logger.debug("sweep item %s takes the public path after %r", item, error)
    return row if row is not None else estimate_item(item, shared.calibration)


def _shared_row(item: dict[str, Any], shared: SharedInputs) -> dict[str, Any] | None:
    """Simulate a model item on its GPU and clock with the chunk's shared workload.

    The steps and defaults follow `energaizer.estimate` for a model source. Returns None
    when the workload could not be built.
    """
    dtype = item.get("dtype", "bf16")
    phase = item.get("phase", "prefill")
    attention = item.get("attention", "default")
    batch, seq, clock_mhz = item.get("batch"), item.get("seq"), item.get("clock_mhz")
    _check_options(dtype, phase, attention, batch, seq, clock_mhz, None)

    gpu = item.get("gpu")
    profile = load_profile(gpu if gpu is not None else DEFAULT_GPU)
    batch = batch or DEFAULT_BATCH
    workload = shared.workload(item["model"], batch, seq or DEFAULT_SEQ, dtype, phase,
                               attention)
    if workload is None:
        return None
    check_operating_point(profile, clock_mhz, None)
    run = simulate_workload(workload, profile, shared.calibration_for(profile), clock_mhz,
                            None)
    return _finished_row(item, profile.id, run.energy_j, run.duration_s, run.avg_power_w,
                         batch, run.clock_mhz)
