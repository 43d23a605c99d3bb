"""Measure GPU energy over a block of code, a function or a command.

Protocol: GPUs are resolved by UUID, one sample of every GPU is taken when the window
opens, then one every `interval_s` seconds on a background thread, and a last one when
it closes. Energy comes from the counter where it updates at least twice in the window,
else from integrated instantaneous power (see `account`).

    with Meter(gpus=["0"]) as meter:
        train()
    print(meter.result.energy_j)
"""

from __future__ import annotations

import functools
import json
import logging
import subprocess
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from energaizer.errors import InputError
from energaizer.fileio import write_text_atomically
from energaizer.hardware.devices import MigSplit, ResolvedDevice, resolve_devices
from energaizer.hardware.simulated import (
    COMMAND_ACTIVITY,
    SimulatedGpu,
    SimulatedNvml,
    SystemClock,
)
from energaizer.measure.account import DEFAULT_DISAGREEMENT_THRESHOLD, account_gpu
from energaizer.measure.result import MeasureResult
from energaizer.measure.sampler import Sampler
from energaizer.measure.timeline import write_timeline

logger = logging.getLogger(__name__)

TIMELINE_NAME = "power_timeline.csv"
RESULT_NAME = "measure.json"


def open_backend(simulate: bool, clock: Any) -> Any:
    """Open NVML, or one simulated GPU on `clock` when `simulate` is True."""
    if simulate:
        return SimulatedNvml([SimulatedGpu(clock)])
    from energaizer.hardware.nvml import Nvml

    return Nvml()


class Meter:
    """Context manager and decorator that measures the energy of the selected GPUs.

    `gpus` are CUDA ordinals, GPU UUIDs or MIG UUIDs (default: every GPU visible to CUDA).
    `interval_s` is the sampling interval in seconds. With `out`, the power timeline CSV
    and the result JSON are written to that folder. `backend` and `clock` replace NVML
    and wall-clock time (tests pass a simulated backend and a fake clock with
    `threaded=False`, then call `meter.sampler.run_for`). After the block, `result` contains
    the MeasureResult.
    """

    def __init__(self, gpus: Sequence[str] | None = None, *, interval_s: float = 0.1,
                 out: str | Path | None = None, simulate: bool = False, backend: Any = None,
                 clock: Any = None, threaded: bool = True, mig_split: MigSplit = MigSplit.none,
                 threshold: float = DEFAULT_DISAGREEMENT_THRESHOLD,
                 environ: Mapping[str, str] | None = None) -> None:
        if interval_s <= 0:
            raise InputError(f"The sampling interval must be positive, got {interval_s} s.")
        self.gpus = list(gpus) if gpus else None
        self.interval_s = interval_s
        self.out = Path(out) if out is not None else None
        self.simulate = simulate
        self.clock = clock or SystemClock()
        self.threaded = threaded
        self.mig_split = MigSplit(mig_split)
        self.threshold = threshold
        self.environ = environ
        self._given_backend = backend
        self._backend: Any = None
        self.resolved: list[ResolvedDevice] = []
        self.sampler: Sampler | None = None
        self.start_s = 0.0
        self.result: MeasureResult | None = None

    def __enter__(self) -> Meter:
        self._backend = self._given_backend or open_backend(self.simulate, self.clock)
        try:
            self.resolved = resolve_devices(self._backend, self.gpus, self.environ)
        except BaseException:
            self._close_backend()
            raise
        self.sampler = Sampler([item.device for item in self.resolved], self.clock,
                               self.interval_s)
        if self.simulate:
            for item in self.resolved:
                item.device.set_activity(COMMAND_ACTIVITY)
        self.start_s = self.clock.now()
        self.sampler.sample()
        if self.threaded:
            self.sampler.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self.sampler is not None
        if self.threaded:
            self.sampler.stop()
        self.sampler.sample()
        end_s = self.clock.now()
        if self.simulate:
            for item in self.resolved:
                item.device.set_idle()
        self.result = self._result(end_s)
        self._close_backend()

    def __call__(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """Measure every call of `function`; the latest result is in `self.result`."""

        @functools.wraps(function)
        def measured(*args: Any, **kwargs: Any) -> Any:
            with self:
                return function(*args, **kwargs)

        return measured

    def _close_backend(self) -> None:
        if self._given_backend is None and self._backend is not None:
            self._backend.close()
        self._backend = None

    def _result(self, end_s: float) -> MeasureResult:
        assert self.sampler is not None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gpus = [account_gpu(series, item, self.start_s, end_s, self.interval_s,
                                threshold=self.threshold, mig_split=self.mig_split)
                    for series, item in zip(self.sampler.series, self.resolved)]
        # Warnings reach the caller once, from here, and stay in the result.
        for warning in caught:
            warnings.warn(str(warning.message), stacklevel=3)
        energies = [gpu.attributed_energy_j for gpu in gpus]
        result = MeasureResult(
            gpus=gpus, duration_s=end_s - self.start_s,
            energy_j=None if any(e is None for e in energies) else sum(energies),
            interval_s=self.interval_s,
            simulated=any(gpu.simulated for gpu in gpus),
            warnings=[str(warning.message) for warning in caught],
        )
        if self.out is not None:
            path = write_timeline(self.sampler.series, self.start_s, self.out / TIMELINE_NAME)
            result.timeline_csv = str(path)
        return result


def measure_command(command: Sequence[str], **meter_options: Any) -> MeasureResult:
    """Run `command` while measuring, and return the result with its exit code.

    A command that cannot be started gets exit code 127, as in a shell.
    """
    if not command:
        raise InputError("Give the command to measure after `--`.")
    meter = Meter(**meter_options)
    with meter:
        try:
            exit_code = subprocess.call(list(command))
        except OSError as error:
            logger.error("could not start %s: %s", command[0], error)
            exit_code = 127
    assert meter.result is not None
    meter.result.command = list(command)
    meter.result.exit_code = exit_code
    if meter.out is not None:
        write_result(meter.result, meter.out / RESULT_NAME)
    return meter.result


def write_result(result: MeasureResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps(result.to_dict(), indent=2, default=str) + "\n")
