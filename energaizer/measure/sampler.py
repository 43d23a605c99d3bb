"""Read every selected GPU at a fixed interval, tolerating NVML's failures.

A reading that fails with a transient NVML error (NOT_READY) is retried with exponential
backoff. A reading that stays missing, or comes back as a placeholder such as "N/A",
"ERR!" or an empty string, is stored as None and recorded as a gap, never as 0. A query
that returns NOT_SUPPORTED is not asked again. No error from the GPU escapes the sampler,
so a failing reading never stops the job being measured.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from energaizer.hardware.nvml import NvmlError, NvmlNotSupportedError

logger = logging.getLogger(__name__)

# Query name -> device method. Energy and power drive the accounting; the others are
# recorded as they are.
QUERIES = {
    "energy": "total_energy_j",
    "power_instant": "power_instant_w",
    "power_average": "power_average_w",
    "sm_clock": "sm_clock_mhz",
    "temperature": "temperature_c",
}
PLACEHOLDERS = frozenset({"", "n/a", "[n/a]", "err!", "[unknown error]", "unknown", "nan"})


def as_reading(value: Any) -> float | None:
    """Return `value` as a finite float, or None for placeholders and invalid values."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (bytes, str)):
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        text = text.strip()
        if text.lower() in PLACEHOLDERS:
            return None
        text = text.split()[0]  # nvidia-smi prints units after the number, e.g. "61.2 W"
        try:
            value = float(text)
        except ValueError:
            return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass
class Sample:
    """Readings of one GPU at `time_s` (seconds on the sampler's clock); None = missing."""

    time_s: float
    values: dict[str, float | None]
    missing: dict[str, str] = field(default_factory=dict)  # query -> why it is missing

    def get(self, query: str) -> float | None:
        return self.values.get(query)


@dataclass
class DeviceSamples:
    """Every sample of one device, and the queries it does not support."""

    device: Any
    samples: list[Sample] = field(default_factory=list)
    unsupported: set[str] = field(default_factory=set)
    retries: int = 0


class Sampler:
    """Sample devices every `interval_s` seconds of `clock` time.

    `sample()` takes one round of readings. `start()` runs rounds on a background thread
    until `stop()`; with a fake clock, call `sample()` directly instead.
    """

    def __init__(self, devices: list[Any], clock: Any, interval_s: float = 0.1, *,
                 attempts: int = 3, backoff_s: float = 0.001) -> None:
        if interval_s <= 0:
            raise ValueError(f"Sampling interval must be positive, got {interval_s} s.")
        self.clock = clock
        self.interval_s = interval_s
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.series = [DeviceSamples(device) for device in devices]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        """Take one reading of every query on every device."""
        for series in self.series:
            series.samples.append(self._read_device(series))

    def _read_device(self, series: DeviceSamples) -> Sample:
        time_s = None
        values: dict[str, float | None] = {}
        missing: dict[str, str] = {}
        for query, method in QUERIES.items():
            if query not in series.unsupported:
                value, problem = self._read_with_retry(series, query,
                                                       getattr(series.device, method))
                values[query] = value
                if problem:
                    missing[query] = problem
            else:
                values[query] = None
            if time_s is None:
                # Stamp the sample when the energy read returns, after any retries, so the
                # counter value and its time belong together.
                time_s = self.clock.now()
        return Sample(time_s, values, missing)

    def _read_with_retry(self, series: DeviceSamples, query: str,
                         read: Callable[[], Any]) -> tuple[float | None, str]:
        delay_s = self.backoff_s
        problem = ""
        for attempt in range(self.attempts):
            try:
                value = as_reading(read())
            except NvmlNotSupportedError:
                series.unsupported.add(query)
                logger.info("GPU %s does not support %s readings", series.device.uuid, query)
                return None, "not supported"
            except NvmlError as error:
                problem = str(error)
                if not error.transient:
                    logger.warning("GPU %s %s reading failed: %s", series.device.uuid, query, error)
                    return None, problem
            else:
                if value is not None:
                    return value, ""
                problem = "placeholder value"
            if attempt + 1 < self.attempts:
                series.retries += 1
                self.clock.sleep(delay_s)
                delay_s *= 2
        logger.debug("GPU %s %s missing after %d attempts: %s", series.device.uuid, query,
                     self.attempts, problem)
        return None, problem

    def start(self) -> None:
        """Sample on a background thread until `stop()`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="energaizer-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        next_s = self.clock.now() + self.interval_s
        while not self._stop.wait(max(next_s - self.clock.now(), 0.0)):
            try:
                self.sample()
            except Exception:  # the job being measured must outlive any sampler bug
                logger.exception("sampling failed; continuing")
            next_s += self.interval_s

    def run_for(self, duration_s: float) -> None:
        """Sample every interval for `duration_s` on the calling thread (fake clocks)."""
        end_s = self.clock.now() + duration_s
        while self.clock.now() + self.interval_s <= end_s + 1e-12:
            self.clock.sleep(self.interval_s)
            self.sample()
