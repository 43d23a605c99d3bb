"""Integrate power over a GPU timeline where activities may overlap on several streams.

The GPU draws its idle power whenever it is on, plus the dynamic power of whatever
runs. Overlapping activities share one draw: their dynamic powers add, and the total is
capped at the power limit. Energy while busy is attributed to the activities that run:
each gets its own scaled dynamic power and an equal share of the idle power.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TimelineEnergy:
    """Energy of one GPU's timeline between its first start and its last end."""

    activity_energy_j: np.ndarray  # per activity, idle share included
    busy_s: float
    idle_s: float
    idle_energy_j: float  # idle power over the gaps where nothing runs
    bounds_us: np.ndarray  # segment boundaries of the timeline
    cumulative_energy_j: np.ndarray  # energy from the first boundary to each boundary
    capped_s: float  # time during which the power limit capped the draw

    @property
    def energy_j(self) -> float:
        return float(self.activity_energy_j.sum() + self.idle_energy_j)

    def energy_between(self, start_us: float, end_us: float) -> float:
        """Energy drawn between two trace times, interpolated inside segments."""
        if not len(self.bounds_us) or end_us <= start_us:
            return 0.0
        values = np.interp([start_us, end_us], self.bounds_us, self.cumulative_energy_j)
        return float(values[1] - values[0])


def integrate_timeline(
    start_us: np.ndarray,
    dur_us: np.ndarray,
    dynamic_w: np.ndarray,
    idle_w: float,
    limit_w: float,
) -> TimelineEnergy:
    """Integrate idle plus dynamic power over the union of activity intervals."""
    start_us = np.asarray(start_us, dtype=np.float64)
    end_us = start_us + np.asarray(dur_us, dtype=np.float64)
    dynamic_w = np.asarray(dynamic_w, dtype=np.float64)
    if not len(start_us):
        return TimelineEnergy(np.zeros(0), 0.0, 0.0, 0.0, np.zeros(0), np.zeros(0), 0.0)

    bounds, start_at = np.unique(np.concatenate([start_us, end_us]), return_inverse=True)
    first_bound, last_bound = start_at[: len(start_us)], start_at[len(start_us) :]
    active = _segment_sums(bounds, first_bound, last_bound, np.ones(len(start_us)))
    dynamic_sum = _segment_sums(bounds, first_bound, last_bound, dynamic_w)
    length_s = np.diff(bounds) * 1e-6
    busy = active > 0.5

    headroom_w = max(limit_w - idle_w, 0.0)
    scale = np.ones_like(dynamic_sum)
    over = dynamic_sum > headroom_w
    scale[over] = headroom_w / dynamic_sum[over]
    idle_share_w = np.where(busy, idle_w / np.maximum(active, 1.0), 0.0)

    scaled_time = np.concatenate([[0.0], np.cumsum(scale * length_s * busy)])
    idle_share_time = np.concatenate([[0.0], np.cumsum(idle_share_w * length_s)])
    activity_energy = dynamic_w * (scaled_time[last_bound] - scaled_time[first_bound])
    activity_energy += idle_share_time[last_bound] - idle_share_time[first_bound]

    segment_power = idle_w + np.where(busy, np.minimum(dynamic_sum, headroom_w), 0.0)
    cumulative = np.concatenate([[0.0], np.cumsum(segment_power * length_s)])
    busy_s = float((length_s * busy).sum())
    idle_s = float((length_s * ~busy).sum())
    return TimelineEnergy(
        activity_energy_j=activity_energy,
        busy_s=busy_s,
        idle_s=idle_s,
        idle_energy_j=idle_w * idle_s,
        bounds_us=bounds,
        cumulative_energy_j=cumulative,
        capped_s=float((length_s * (busy & over)).sum()),
    )


def _segment_sums(
    bounds: np.ndarray, first: np.ndarray, last: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """Sum `values` over the activities that cover each segment between bounds."""
    delta = np.zeros(len(bounds))
    np.add.at(delta, first, values)
    np.add.at(delta, last, -values)
    return np.cumsum(delta)[:-1]
