"""Energy of a window from counter readings or from sampled power.

Counter: NVML's energy counter updates in steps of a few milliseconds, so consecutive
readings often repeat. Energy is the sum of signed deltas between distinct values. A
decrease means the counter was reset, so the value after it counts as energy since the
reset and never as negative energy. Power over the window is that sum divided by the time
between the first and the last observed update. Window energy is that power times the
window's duration, which removes the quantization of up to one step at each end.

Power integration: the trapezoid rule over instantaneous power samples, holding the
first and last value out to the window's edges. Missing samples are skipped; an interval
between valid samples longer than `GAP_FACTOR` sampling intervals counts as uncovered.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

GAP_FACTOR = 2.5


@dataclass
class CounterEnergy:
    """Counter accounting of one window; `energy_j` is None with fewer than two updates."""

    energy_j: float | None
    power_w: float | None
    updates: int  # distinct values seen after the first reading
    update_period_s: float | None  # median time between observed updates
    resets: int
    interval_powers: list[tuple[float, float]] = field(default_factory=list)  # (s, W)


def counter_energy(points: Iterable[tuple[float, float]], duration_s: float) -> CounterEnergy:
    """Account counter readings `points` of (time s, counter J) over a window."""
    points = list(points)
    if not points:
        return CounterEnergy(None, None, 0, None, 0)

    first_update_s, total_j, resets = None, 0.0, 0
    previous_j = points[0][1]
    previous_update_s = None
    update_times, interval_powers = [], []
    for time_s, value_j in points[1:]:
        if value_j == previous_j:
            continue
        delta_j = value_j - previous_j
        if delta_j < 0:
            resets += 1
            delta_j = value_j  # energy since the reset, because the part before it is lost
        previous_j = value_j
        if first_update_s is None:
            # The first change only marks a time, because its delta belongs to the time
            # before the first observed update.
            first_update_s = previous_update_s = time_s
            update_times.append(time_s)
            continue
        total_j += delta_j
        if time_s > previous_update_s:
            interval_powers.append((time_s, delta_j / (time_s - previous_update_s)))
        previous_update_s = time_s
        update_times.append(time_s)

    if len(update_times) < 2:
        return CounterEnergy(None, None, len(update_times), None, resets)
    period_s = statistics.median(b - a for a, b in itertools.pairwise(update_times))
    power_w = total_j / (update_times[-1] - update_times[0])
    return CounterEnergy(power_w * duration_s, power_w, len(update_times), period_s, resets,
                         interval_powers)


@dataclass
class IntegratedEnergy:
    """Energy from sampled power; `energy_j` is None with fewer than two valid samples or
    a window shorter than the sampling interval."""

    energy_j: float | None
    valid_samples: int
    coverage: float  # share of the window covered by samples without gaps, 0 to 1
    gaps: list[tuple[float, float]]  # (start s, end s) of each interval without samples
    peak_power_w: float | None


def integrate_power(points: Iterable[tuple[float, float | None]], start_s: float, end_s: float,
                    interval_s: float) -> IntegratedEnergy:
    """Integrate power samples of (time s, W or None) over [start_s, end_s]."""
    points = list(points)
    valid = [(t, w) for t, w in points if w is not None]
    duration_s = end_s - start_s
    gaps = _gaps(points, interval_s)
    # A window shorter than one sampling interval has no sample inside it to integrate.
    if len(valid) < 2 or duration_s < interval_s:
        return IntegratedEnergy(None, len(valid), 0.0, gaps,
                                max((w for _, w in valid), default=None))
    energy_j = 0.0
    for (t0, w0), (t1, w1) in itertools.pairwise(valid):
        energy_j += 0.5 * (w0 + w1) * (t1 - t0)
    energy_j += valid[0][1] * max(valid[0][0] - start_s, 0.0)
    energy_j += valid[-1][1] * max(end_s - valid[-1][0], 0.0)
    uncovered_s = sum(b - a for a, b in gaps)
    uncovered_s += max(valid[0][0] - start_s - GAP_FACTOR * interval_s, 0.0)
    uncovered_s += max(end_s - valid[-1][0] - GAP_FACTOR * interval_s, 0.0)
    coverage = min(max(1.0 - uncovered_s / duration_s, 0.0), 1.0)
    return IntegratedEnergy(energy_j, len(valid), coverage, gaps, max(w for _, w in valid))


def _gaps(points: list[tuple[float, float | None]], interval_s: float) -> list[tuple[float, float]]:
    """Intervals between valid samples longer than GAP_FACTOR sampling intervals."""
    gaps = []
    last_valid_s = None
    for time_s, value in points:
        if value is None:
            continue
        if last_valid_s is not None and time_s - last_valid_s > GAP_FACTOR * interval_s:
            gaps.append((last_valid_s, time_s))
        last_valid_s = time_s
    return gaps


def relative_disagreement(counter_j: float, integrated_j: float) -> float:
    """(integrated - counter) / counter: how far sampled power strays from the counter."""
    if counter_j <= 0:
        return float("inf") if integrated_j > 0 else 0.0
    return (integrated_j - counter_j) / counter_j


@dataclass(frozen=True)
class ScopedReading:
    """An energy reading and the components it covers, such as {"gpu", "cpu", "dram"}."""

    name: str
    energy_j: float
    scope: frozenset[str]
    method: str = ""
    window_s: tuple[float, float] | None = None


@dataclass
class ScopeTotal:
    energy_j: float
    added: list[str]
    skipped: dict[str, str]  # reading name -> why it was not added


def add_disjoint(readings: Iterable[ScopedReading]) -> ScopeTotal:
    """Sum readings whose scopes do not overlap, widest scope first.

    A reading inside a scope already counted is skipped because its energy is part of
    that reading. A reading that overlaps only partly is skipped too, since adding it
    would count the shared components twice.
    """
    ordered = sorted(readings, key=lambda reading: (-len(reading.scope), reading.name))
    covered: set[str] = set()
    total_j, added, skipped = 0.0, [], {}
    for reading in ordered:
        overlap = covered & reading.scope
        if not overlap:
            total_j += reading.energy_j
            covered |= reading.scope
            added.append(reading.name)
        elif reading.scope <= covered:
            skipped[reading.name] = f"scope {sorted(reading.scope)} is inside one already counted"
        else:
            skipped[reading.name] = f"scope overlaps {sorted(overlap)} already counted"
    return ScopeTotal(total_j, added, skipped)
