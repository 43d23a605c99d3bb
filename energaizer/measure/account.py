"""Turn one GPU's samples into its energy, with the method and every caveat.

The counter is preferred. Without it (no counter, or fewer than two updates inside the
window) instantaneous power is integrated. If the GPU has no instantaneous field, the
one-second average is integrated and flagged, because it smears bursts shorter than a
second. When both the counter and sampled power exist, both energies are reported with
their relative disagreement. Mean power is always energy over duration.
"""

from __future__ import annotations

import logging
import warnings

from energaizer.hardware.devices import MigSplit, ResolvedDevice
from energaizer.measure.energy import counter_energy, integrate_power, relative_disagreement
from energaizer.measure.result import (
    COUNTER,
    INSUFFICIENT_SAMPLES,
    POWER_INTEGRATION,
    UNAVAILABLE,
    GpuEnergy,
)
from energaizer.measure.sampler import DeviceSamples

logger = logging.getLogger(__name__)

DEFAULT_DISAGREEMENT_THRESHOLD = 0.10  # relative, between counter and integrated power
_TELEMETRY = frozenset({"energy", "power_instant", "power_average"})


def account_gpu(series: DeviceSamples, resolved: ResolvedDevice, start_s: float, end_s: float,
                interval_s: float, *, threshold: float = DEFAULT_DISAGREEMENT_THRESHOLD,
                mig_split: MigSplit = MigSplit.none) -> GpuEnergy:
    """Compute the energy of one GPU over [start_s, end_s] (seconds on the sampler clock)."""
    device = series.device
    duration_s = end_s - start_s
    notes: list[str] = []
    counter = counter_energy(
        [(s.time_s, s.get("energy")) for s in series.samples if s.get("energy") is not None],
        duration_s)
    power_query = "power_instant"
    if "power_instant" in series.unsupported and "power_average" not in series.unsupported:
        power_query = "power_average"
    integrated = integrate_power([(s.time_s, s.get(power_query)) for s in series.samples],
                                 start_s, end_s, interval_s)

    if counter.energy_j is not None:
        method, energy_j, coverage = COUNTER, counter.energy_j, 1.0
    elif integrated.energy_j is not None:
        method, energy_j, coverage = POWER_INTEGRATION, integrated.energy_j, integrated.coverage
        notes.append(_fallback_note(series, counter.updates))
        if power_query == "power_average":
            notes.append("Only the one-second average power is available, so bursts shorter "
                         "than a second are smeared in the integrated energy.")
    else:
        method, energy_j, coverage = UNAVAILABLE, None, 0.0
        notes.append(_unavailable_note(series, integrated.valid_samples, duration_s, interval_s))
    if counter.resets:
        notes.append(f"The energy counter was reset {counter.resets} time(s) during the window; "
                     "energy from just before each reset is lost.")

    disagreement = None
    if counter.energy_j is not None and integrated.energy_j is not None:
        disagreement = relative_disagreement(counter.energy_j, integrated.energy_j)
        if abs(disagreement) > threshold:
            notes.append(
                f"Counter energy {counter.energy_j:.1f} J and integrated power "
                f"{integrated.energy_j:.1f} J disagree by {100 * disagreement:+.1f}% "
                f"(threshold {100 * threshold:.0f}%); the counter value is reported.")

    if energy_j is not None:
        status = "ok"
    elif _TELEMETRY <= series.unsupported:
        status = UNAVAILABLE
    else:
        status = INSUFFICIENT_SAMPLES
    peak_w = integrated.peak_power_w
    if peak_w is None and counter.interval_powers:
        peak_w = max(power for _, power in counter.interval_powers)
    attributed_j = energy_j
    if energy_j is not None and resolved.shared and mig_split == MigSplit.equal:
        attributed_j = energy_j / resolved.slices
    if resolved.shared:
        notes.append(f"{resolved.request} is a MIG slice; the readings are of parent GPU "
                     f"{device.uuid}, shared by {resolved.slices} slice(s), split rule "
                     f"{mig_split.value!r}.")
    for note in notes:
        warnings.warn(note, stacklevel=3)
    return GpuEnergy(
        index=device.index, uuid=device.uuid, name=device.name,
        simulated=bool(getattr(device, "simulated", False)), request=resolved.request,
        method=method, status=status, energy_j=energy_j, duration_s=duration_s,
        avg_power_w=energy_j / duration_s if energy_j is not None and duration_s > 0 else None,
        peak_power_w=peak_w, coverage=coverage, window_s=(start_s, end_s),
        scope=f"gpu:{device.uuid}", counter_energy_j=counter.energy_j,
        integrated_energy_j=integrated.energy_j, disagreement=disagreement,
        counter_update_period_s=counter.update_period_s, counter_resets=counter.resets,
        samples=len(series.samples), gaps=_gap_records(series, integrated.gaps),
        retries=series.retries, unsupported=sorted(series.unsupported), shared=resolved.shared,
        mig_uuid=resolved.mig_uuid, mig_split=mig_split.value, attributed_energy_j=attributed_j,
        warnings=notes,
    )


def _fallback_note(series: DeviceSamples, updates: int) -> str:
    if "energy" in series.unsupported:
        return "This GPU has no energy counter; energy is integrated from sampled power."
    return (f"The energy counter updated {updates} time(s) in the window, fewer than the 2 "
            "needed, so the window is shorter than its update period; energy is integrated "
            "from sampled power.")


def _unavailable_note(series: DeviceSamples, valid: int, duration_s: float,
                      interval_s: float) -> str:
    if _TELEMETRY <= series.unsupported:
        return ("The GPU reports neither an energy counter nor power, so energy is "
                "unavailable (coverage 0%).")
    return (f"Insufficient samples: {valid} valid power sample(s) over {duration_s:.3f} s with "
            f"a {interval_s:.3f} s interval, and too few counter updates; energy is "
            "unavailable, not 0.")


def _gap_records(series: DeviceSamples, power_gaps: list[tuple[float, float]]) -> list[dict]:
    records = [{"start_s": a, "end_s": b, "query": "power"} for a, b in power_gaps]
    for sample in series.samples:
        for query, reason in sample.missing.items():
            if reason != "not supported":
                records.append({"time_s": sample.time_s, "query": query, "reason": reason})
    return records
