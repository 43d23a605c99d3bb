"""A simulated GPU with the interface of `NvmlDevice` and NVML's quirks.

Its power is a known function of the work it is given: idle power plus, for each power
module, a coefficient in W times that module's busy share. The energy counter is exact
but only updates every `counter_period_s`, as NVML's counter steps every few
milliseconds. The average power lags like the one-second average of Ampere and newer.
Instantaneous power carries Gaussian noise, the counter can be reset, and queries can
fail with NVML's return codes. Time comes from an injectable clock, so tests run instantly and repeat exactly.
Everything it produces is labelled "simulated".
"""

from __future__ import annotations

import bisect
import math
import random
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from typing import Any

from energaizer.hardware.nvml import NO_PERMISSION, NOT_SUPPORTED, nvml_error
from energaizer.units import mj_to_j

AVERAGE_WINDOW_S = 1.0
# W per power module at full activity; invented for the simulator, of the order of a
# 400 W data-center GPU.
DEFAULT_COEFFICIENTS = {"dram": 90.0, "active": 50.0, "l2": 20.0, "smem": 10.0,
                        "tensor": 150.0, "fp32": 80.0, "sfu": 10.0}
# Busy shares the simulated GPU runs while `measure --simulate` runs a command.
COMMAND_ACTIVITY = {"active": 1.0, "tensor": 0.6, "dram": 0.4, "l2": 0.3}


class SystemClock:
    """Monotonic wall-clock time in seconds."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(seconds, 0.0))


class ManualClock:
    """A fake time source for tests: time moves only when `sleep` or `advance` is called."""

    def __init__(self, start_s: float = 0.0) -> None:
        self.time_s = start_s

    def now(self) -> float:
        return self.time_s

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.time_s += max(seconds, 0.0)


class SimulatedGpu:
    """A GPU whose true power is known, read through an NVML-like interface.

    `coefficients` are W per power module at full activity (as in PowerCoefficients).
    `faults` maps a query name (energy, power_instant, power_average, sm_clock,
    temperature, power_limit) to values the next calls use in order. An int is raised
    as that NVML return code. Any other value, such as the placeholder text "N/A", is
    returned in place of the reading. Queries named in `unsupported` always fail with
    NOT_SUPPORTED.
    """

    simulated = True

    def __init__(self, clock: Any = None, *, index: int = 0, uuid: str = "GPU-simulated-0",
                 name: str = "Simulated GPU", idle_power_w: float = 60.0,
                 coefficients: Mapping[str, float] | None = None, power_limit_w: float = 400.0,
                 sm_clock_mhz: float = 1410.0, counter_period_s: float = 0.01,
                 noise_w: float = 0.0, seed: int = 0, unsupported: Iterable[str] = (),
                 faults: Mapping[str, list] | None = None, can_lock_clocks: bool = False) -> None:
        self.clock = clock or SystemClock()
        self.index, self.uuid, self.name = index, uuid, name
        self.idle_power_w = idle_power_w
        self.coefficients = dict(DEFAULT_COEFFICIENTS if coefficients is None else coefficients)
        self.limit_w = power_limit_w
        self.clock_mhz = sm_clock_mhz
        self.default_clock_mhz = sm_clock_mhz
        self.counter_period_s = counter_period_s
        self.noise_w = noise_w
        self.random = random.Random(seed)
        self.unsupported = set(unsupported)
        self.faults: dict[str, deque] = defaultdict(deque)
        for query, values in (faults or {}).items():
            self.faults[query].extend(values)
        self.can_lock_clocks = can_lock_clocks
        self.counter_offset_j = 0.0
        # Piecewise-constant true power: segment i starts at _starts[i] with _powers[i].
        self._starts = [self.clock.now()]
        self._powers = [idle_power_w]
        self._energy_before = [0.0]  # true energy in J from the first start to _starts[i]

    # Work and ground truth.

    def power_of(self, activity: Mapping[str, float]) -> float:
        """The known power function: idle W plus sum of coefficient W x busy share."""
        dynamic = sum(self.coefficients.get(module, 0.0) * share
                      for module, share in activity.items())
        return self.idle_power_w + dynamic

    def set_activity(self, activity: Mapping[str, float]) -> float:
        """Run work with these module busy shares from now on; return its power in W."""
        return self.set_power(self.power_of(activity))

    def set_idle(self) -> None:
        self.set_power(self.idle_power_w)

    def set_power(self, power_w: float) -> float:
        """Draw `power_w` from now on."""
        now = self.clock.now()
        self._energy_before.append(self.true_energy_j(self._starts[0], now))
        self._starts.append(now)
        self._powers.append(power_w)
        return power_w

    def true_power_w(self, at_s: float | None = None) -> float:
        at_s = self.clock.now() if at_s is None else at_s
        position = max(bisect.bisect_right(self._starts, at_s) - 1, 0)
        return self._powers[position]

    def true_energy_j(self, start_s: float, end_s: float) -> float:
        """Exact energy in J drawn between two times."""
        return self._energy_to(end_s) - self._energy_to(start_s)

    def _energy_to(self, at_s: float) -> float:
        position = bisect.bisect_right(self._starts, at_s) - 1
        if position < 0:
            return 0.0
        return self._energy_before[position] + self._powers[position] * (at_s - self._starts[position])

    def reset_counter(self) -> None:
        """Restart the energy counter from zero, as a driver reload does."""
        self.counter_offset_j = self._energy_to(self._last_update_s())

    def _last_update_s(self) -> float:
        elapsed = self.clock.now() - self._starts[0]
        steps = math.floor(elapsed / self.counter_period_s + 1e-9)
        return self._starts[0] + steps * self.counter_period_s

    # The NVML-like interface.

    def _query(self, name: str, compute: Any) -> Any:
        if name in self.unsupported:
            raise nvml_error(NOT_SUPPORTED, f"simulated {name}", "Not Supported")
        if self.faults[name]:
            fault = self.faults[name].popleft()
            if isinstance(fault, int) and not isinstance(fault, bool):
                raise nvml_error(fault, f"simulated {name}", f"simulated NVML code {fault}")
            return fault
        return compute()

    def total_energy_j(self) -> float:
        """Counter in J since the first start, updated every counter_period_s, whole mJ."""
        def read() -> float:
            # The small offset keeps float rounding from dropping a whole millijoule.
            energy_mj = math.floor(1e3 * (self._energy_to(self._last_update_s())
                                          - self.counter_offset_j) + 1e-6)
            return mj_to_j(energy_mj)
        return self._query("energy", read)

    def power_instant_w(self) -> float:
        def read() -> float:
            noise = self.random.gauss(0.0, self.noise_w) if self.noise_w else 0.0
            return max(self.true_power_w() + noise, 0.0)
        return self._query("power_instant", read)

    def power_average_w(self) -> float:
        """Mean true power over the last second (less just after the start)."""
        def read() -> float:
            now = self.clock.now()
            start = max(now - AVERAGE_WINDOW_S, self._starts[0])
            if now <= start:
                return self.true_power_w(now)
            return self.true_energy_j(start, now) / (now - start)
        return self._query("power_average", read)

    def sm_clock_mhz(self) -> float:
        return self._query("sm_clock", lambda: self.clock_mhz)

    def memory_clock_mhz(self) -> float:
        return self._query("memory_clock", lambda: 1593.0)

    def temperature_c(self) -> float:
        return self._query("temperature", lambda: 40.0 + 0.1 * (self.true_power_w() - 60.0))

    def power_limit_w(self) -> float:
        return self._query("power_limit", lambda: self.limit_w)

    def memory_total_bytes(self) -> int:
        return 80 * 1024**3

    def lock_sm_clocks(self, min_mhz: int, max_mhz: int) -> None:
        if not self.can_lock_clocks:
            raise nvml_error(NO_PERMISSION, "simulated nvmlDeviceSetGpuLockedClocks",
                             "Insufficient Permissions")
        self.clock_mhz = float(max_mhz)

    def reset_sm_clocks(self) -> None:
        self.clock_mhz = self.default_clock_mhz


class SimulatedNvml:
    """An NVML session over simulated GPUs, with optional MIG slices and init failure.

    `mig` maps a MIG UUID to the index of its parent in `gpus`. `init_error` is an NVML
    return code that initialization fails with.
    """

    def __init__(self, gpus: list[SimulatedGpu], *, mig: Mapping[str, int] | None = None,
                 init_error: int | None = None) -> None:
        if init_error is not None:
            raise nvml_error(init_error, "nvmlInit")
        self.gpus = gpus
        self.mig = dict(mig or {})

    def __enter__(self) -> SimulatedNvml:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        pass

    def device_count(self) -> int:
        return len(self.gpus)

    def driver_version(self) -> str:
        return "simulated"

    def cuda_version(self) -> str:
        return "simulated"

    def handle_by_index(self, index: int) -> Any:
        return self.gpus[index]

    def handle_by_uuid(self, uuid: str) -> Any:
        if uuid in self.mig:
            return ("mig", uuid)
        for gpu in self.gpus:
            if gpu.uuid == uuid:
                return gpu
        raise nvml_error(13, "nvmlDeviceGetHandleByUUID", "Not Found")

    def uuid(self, handle: Any) -> str:
        return handle[1] if isinstance(handle, tuple) else handle.uuid

    def parent_of_mig(self, mig_handle: Any) -> Any:
        return self.gpus[self.mig[mig_handle[1]]]

    def mig_slice_count(self, parent_handle: Any) -> int:
        parent = self.gpus.index(parent_handle)
        return sum(1 for index in self.mig.values() if index == parent)

    def device(self, handle: Any, index: int) -> SimulatedGpu:
        return handle
