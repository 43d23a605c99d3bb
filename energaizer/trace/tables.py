"""Build the typed tables of a trace from its raw events.

Every value is checked here: timestamps may be numbers or numeric strings, ids may be
integers beyond 2^53 or strings of digits, and any field may be missing or of the wrong
type. An event whose time cannot be read is counted as unusable, never guessed.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

import msgspec
import numpy as np
import pandas as pd

from energaizer.trace import categories as cat
from energaizer.trace.events import ANY_DECODER, RawEvent
from energaizer.trace.model import MISSING_ID

_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)
_DECIMAL_INTEGER = re.compile(r"-?[0-9]+", re.ASCII)

# A GPU activity that starts this far from the median start of all GPU activity (one
# day, in microseconds) has a broken clock, not a real position on the timeline.
_TIMESTAMP_OUTLIER_US = 86_400e6


def to_float(value: Any) -> float | None:
    """Return a finite float from a JSON number or numeric string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond the float range (about 1.8e308)
            return None
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def to_int(value: Any) -> int | None:
    """Return an exact integer from a JSON integer or a string of digits, else None.

    Floats are accepted only when integral; ids written as floats beyond 2^53 have
    already lost digits in the file itself. A string must be an optional minus sign and
    ASCII digits, at most Python's limit for int conversion (4300 digits by default).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not _DECIMAL_INTEGER.fullmatch(text):
            return None
        try:
            return int(text)
        except ValueError:  # more digits than sys.get_int_max_str_digits() allows
            return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def to_int64(value: Any) -> int | None:
    """Return `to_int(value)` when it fits a signed 64-bit integer, else None.

    Used for the int64 columns (device, stream, sizes, bytes), where a larger value is
    malformed rather than an id to keep exactly.
    """
    number = to_int(value)
    if number is None or not _INT64_MIN <= number <= _INT64_MAX:
        return None
    return number


def _args(event: RawEvent) -> dict[str, Any]:
    """Decode an event's args object; anything that is not an object becomes empty."""
    if not len(event.args):
        return {}
    try:
        value = ANY_DECODER.decode(event.args)
    except (msgspec.DecodeError, RecursionError):  # RecursionError: nested 1000 levels deep
        return {}
    return value if isinstance(value, dict) else {}


def _external_id(args: dict[str, Any]) -> int:
    value = to_int(args.get("External id", args.get("external id")))
    return MISSING_ID if value is None else value


def _dim3(value: Any) -> tuple[int, int, int]:
    """Read a CUDA grid or block size; missing or malformed sizes become (0, 0, 0)."""
    if isinstance(value, list) and len(value) == 3:
        sizes = [to_int64(item) for item in value]
        if all(size is not None and size >= 0 for size in sizes):
            return sizes[0], sizes[1], sizes[2]  # type: ignore[return-value]
    return 0, 0, 0


class _Columns:
    """Column lists for one table, appended row by row."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.values: dict[str, list[Any]] = {name: [] for name in names}

    def append(self, row: tuple[Any, ...]) -> None:
        for name, value in zip(self.names, row):
            self.values[name].append(value)

    def frame(self, id_columns: tuple[str, ...] = ()) -> pd.DataFrame:
        columns: dict[str, Any] = {}
        for name in self.names:
            values = self.values[name]
            if name in id_columns:
                columns[name] = _id_column(values)
            elif name.endswith("_us"):
                columns[name] = np.asarray(values, dtype=np.float64)
            else:
                columns[name] = values
        return pd.DataFrame(columns)


def _id_column(values: list[int]) -> np.ndarray:
    """Store ids as int64 when all fit, else as exact Python ints."""
    if all(_INT64_MIN <= value <= _INT64_MAX for value in values):
        return np.asarray(values, dtype=np.int64)
    return np.asarray(values, dtype=object)


GPU_COLUMNS = (
    "category", "name", "ts_us", "dur_us", "device", "stream", "correlation",
    "external_id", "grid_x", "grid_y", "grid_z", "block_x", "block_y", "block_z",
    "registers_per_thread", "shared_memory_bytes", "bytes",
)
RUNTIME_COLUMNS = ("name", "ts_us", "dur_us", "pid", "tid", "correlation", "external_id")
CPU_COLUMNS = (
    "name", "ts_us", "dur_us", "pid", "tid", "external_id", "category",
    "input_dims", "input_types", "on_gpu",
)


class TableBuilder:
    """Sort raw events into GPU activity, runtime calls and CPU operators."""

    def __init__(self) -> None:
        self.gpu = _Columns(GPU_COLUMNS)
        self.runtime = _Columns(RUNTIME_COLUMNS)
        self.cpu = _Columns(CPU_COLUMNS)
        self.unusable_events = 0
        self._handlers: dict[str, Callable[[RawEvent, str, float, float], None]] = {
            cat.KERNEL: self._add_gpu,
            cat.MEMCPY: self._add_gpu,
            cat.MEMSET: self._add_gpu,
            cat.RUNTIME: self._add_runtime,
            cat.CPU_OP: self._add_cpu,
            cat.USER_ANNOTATION: self._add_cpu,
            cat.GPU_USER_ANNOTATION: self._add_cpu,
        }

    def add_all(self, events: list[RawEvent]) -> None:
        """Add every complete (`ph` "X") event of a category the analysis uses."""
        handlers = self._handlers
        for event in events:
            category = cat.canonical_category(event.cat)
            if category is None or event.ph != "X":
                continue
            ts_us = to_float(event.ts)
            dur_us = to_float(event.dur)
            if ts_us is None or dur_us is None or dur_us < 0 or not isinstance(event.name, str):
                self.unusable_events += 1
                continue
            handlers[category](event, category, ts_us, dur_us)

    def _add_gpu(self, event: RawEvent, category: str, ts_us: float, dur_us: float) -> None:
        args = _args(event)
        device = to_int64(args.get("device"))
        if device is None:
            device = to_int64(event.pid)
        stream = to_int64(args.get("stream"))
        if stream is None:
            stream = to_int64(event.tid)
        correlation = to_int(args.get("correlation"))
        grid = _dim3(args.get("grid"))
        block = _dim3(args.get("block"))
        self.gpu.append((
            category, event.name, ts_us, dur_us,
            MISSING_ID if device is None else device,
            MISSING_ID if stream is None else stream,
            MISSING_ID if correlation is None else correlation,
            _external_id(args), *grid, *block,
            to_int64(args.get("registers per thread")) or 0,
            to_int64(args.get("shared memory")) or 0,
            to_int64(args.get("bytes")) or 0,
        ))

    def _add_runtime(self, event: RawEvent, category: str, ts_us: float, dur_us: float) -> None:
        args = _args(event)
        correlation = to_int(args.get("correlation"))
        self.runtime.append((
            event.name, ts_us, dur_us, _pid_or_tid(event.pid), _pid_or_tid(event.tid),
            MISSING_ID if correlation is None else correlation, _external_id(args),
        ))

    def _add_cpu(self, event: RawEvent, category: str, ts_us: float, dur_us: float) -> None:
        args = _args(event)
        dims = args.get("Input Dims")
        types = args.get("Input type")
        self.cpu.append((
            event.name, ts_us, dur_us, _pid_or_tid(event.pid), _pid_or_tid(event.tid),
            _external_id(args),
            cat.USER_ANNOTATION if category == cat.GPU_USER_ANNOTATION else category,
            dims if isinstance(dims, list) else None,
            types if isinstance(types, list) else None,
            category == cat.GPU_USER_ANNOTATION,
        ))

    def gpu_frame(self) -> tuple[pd.DataFrame, int]:
        """Return the GPU activity table and how many rows were set aside because their
        timestamps cannot be placed on the timeline (zero, or a day from the rest)."""
        frame = self.gpu.frame(id_columns=("correlation", "external_id"))
        if frame.empty:
            return frame, 0
        placed = frame["ts_us"] > 0
        if placed.any():
            median_us = float(frame.loc[placed, "ts_us"].median())
            placed &= (frame["ts_us"] - median_us).abs() < _TIMESTAMP_OUTLIER_US
        set_aside = int((~placed).sum())
        frame = frame[placed].sort_values("ts_us", kind="stable").reset_index(drop=True)
        for column in ("device", "stream", "grid_x", "grid_y", "grid_z",
                       "block_x", "block_y", "block_z", "registers_per_thread",
                       "shared_memory_bytes", "bytes"):
            frame[column] = frame[column].astype(np.int64)
        return frame, set_aside

    def runtime_frame(self) -> pd.DataFrame:
        return self.runtime.frame(id_columns=("correlation", "external_id"))

    def cpu_frame(self) -> pd.DataFrame:
        return self.cpu.frame(id_columns=("external_id",))


def _pid_or_tid(value: Any) -> int | str:
    """Keep integer pids and tids as ints and anything else as its string form."""
    number = to_int(value)
    return number if number is not None else str(value)
