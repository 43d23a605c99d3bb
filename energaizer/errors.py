"""Exceptions raised by energaizer, all under one base class.

The library raises; only the CLI turns an exception into a message and an exit code.
Each class carries the exit code the CLI uses for it: 1 a check or budget failed or some
sweep items failed, 2 bad input or usage, 3 hardware or NVML unavailable.
"""

from __future__ import annotations


class EnergaizerError(Exception):
    """Base class of every error energaizer raises on purpose."""

    exit_code = 2


class InputError(EnergaizerError):
    """An input file, option or value is invalid; the message says which and why."""

    exit_code = 2


class TraceError(InputError):
    """A profiler trace cannot be read or is not usable for an estimate.

    `byte_offset` and `event_index` locate the problem in the file when known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        byte_offset: int | None = None,
        event_index: int | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.byte_offset = byte_offset
        self.event_index = event_index


class TruncatedTraceError(TraceError):
    """The trace file ends before its JSON is complete."""

    def __init__(self, message: str, *, complete_events: int, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.complete_events = complete_events


class NotNvidiaTraceError(TraceError):
    """The trace was recorded on a GPU that is not an NVIDIA GPU."""


class ProfileError(InputError):
    """A GPU or model profile is missing, unknown or malformed."""


class HardwareError(EnergaizerError):
    """A GPU or NVML is not available or does not support a required query."""

    exit_code = 3


class CheckFailedError(EnergaizerError):
    """An estimate exceeded its budget or its baseline."""

    exit_code = 1


class ItemsFailedError(EnergaizerError):
    """Some items of a sweep failed; the other items finished and were written."""

    exit_code = 1
