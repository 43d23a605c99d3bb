"""Build the typed tables of a trace from its events.

Every value is checked here: timestamps may be numbers or numeric strings, ids may be
integers beyond 2^53 or strings of digits, and any field may be missing or of the wrong
type. An event whose time cannot be read is counted as unusable, never guessed. Batches
of typed events, which msgspec has already checked, take the faster path in `columns`.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable

import msgspec
import numpy as np
import pandas as pd
from msgspec import UNSET

from energaizer.trace import categories as cat
from energaizer.trace.columns import (
    EncodedStrings,
    ShapeNotDecodable,
    SharedValues,
    StringTable,
    typed_columns,
)
from energaizer.trace.events import KNOWN_ARGS_DECODER, KnownArgs, RawEvent, TypedEvent
from energaizer.trace.model import MISSING_ID
from energaizer.trace.values import (
    plausible_time,
    to_dim3,
    to_float,
    to_int,
    to_int64,
    to_pid_or_tid,
)

# A GPU activity that starts this far from the median start of all GPU activity (one
# day, in microseconds) has a broken clock, not a real position on the timeline.
_TIMESTAMP_OUTLIER_US = 86_400e6

_NO_ARGS = KnownArgs()


def _args(event: RawEvent) -> KnownArgs:
    """Decode the keys of an event's args object that the tables read.

    Anything that is not an object becomes empty, and so does an object in which one of
    those keys does not decode (invalid UTF-8 or a number beyond the float range) or a
    value nests 1000 levels deep. The values of other keys are skipped, not decoded, so
    invalid text there leaves the keys read intact.
    """
    if not len(event.args):
        return _NO_ARGS
    try:
        return KNOWN_ARGS_DECODER.decode(event.args)
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return _NO_ARGS


def _external_id(args: KnownArgs) -> int:
    """Read "External id", or "external id" when the first spelling is absent."""
    value = args.external_id
    if value is UNSET:
        value = args.external_id_lowercase
    number = None if value is UNSET else to_int(value)
    return MISSING_ID if number is None else number


class _Columns:
    """Columns of one table, from rows appended one at a time and from batches of whole
    columns: lists, numpy arrays whose dtype is the one pandas infers for them, and
    strings encoded in a table shared by the builder's columns.

    `compact` turns the numbers and strings of appended rows into arrays and codes;
    lists of shapes stay lists, which hold only references to shared objects.
    """

    def __init__(self, names: tuple[str, ...], id_columns: tuple[str, ...],
                 strings: StringTable) -> None:
        self.names = names
        self.id_columns = id_columns
        self.strings = strings
        # Per column: lists, numpy arrays and EncodedStrings, in row order.
        self.parts: dict[str, list[Any]] = {name: [] for name in names}
        self._row_lists: dict[str, list[Any]] | None = None
        self._length = 0

    def append(self, row: tuple[Any, ...]) -> None:
        if self._row_lists is None:
            self._row_lists = {name: [] for name in self.names}
            for name in self.names:
                self.parts[name].append(self._row_lists[name])
        for name, value in zip(self.names, row):
            self._row_lists[name].append(value)
        self._length += 1

    def extend(self, columns: dict[str, list[Any] | np.ndarray]) -> None:
        """Add rows given as one list or array per column, every column included."""
        if not len(columns[self.names[0]]):
            return
        self._row_lists = None
        for name in self.names:
            self.parts[name].append(columns[name])
        self._length += len(columns[self.names[0]])

    def __len__(self) -> int:
        return self._length

    def compact(self) -> None:
        """Store the numbers and strings of list parts as arrays and string codes,
        without changing the frame."""
        self._row_lists = None
        for name in self.names:
            self.parts[name] = [self._compacted(name, part) for part in self.parts[name]]

    def _compacted(self, name: str, part: Any) -> Any:
        if isinstance(part, (np.ndarray, EncodedStrings)):
            return part
        if name.endswith("_us"):
            return np.asarray(part, dtype=np.float64)
        if name in self.id_columns:
            return _id_column([part])
        # Only where pandas infers the same dtype from the whole column: all ints that
        # fit int64, all bools, or all strings. Other lists are joined as lists in `frame`.
        kinds = set(map(type, part))
        if kinds == {str}:
            return self.strings.encode(part)
        if kinds == {bool}:
            return np.array(part, dtype=bool)
        if kinds == {int}:
            try:
                return np.array(part, dtype=np.int64)
            except OverflowError:
                return part
        return part

    def float_column(self, name: str) -> np.ndarray:
        """Return a float column as one array, leaving the table as it is."""
        self.parts[name] = [np.asarray(part, dtype=np.float64) for part in self.parts[name]]
        return np.concatenate(self.parts[name] or [np.zeros(0)])

    def frame(self, rows: np.ndarray | None = None) -> pd.DataFrame:
        """Return the table as a DataFrame, or only its `rows` in that order. The columns
        are emptied to free memory."""
        columns: dict[str, Any] = {}
        for name in self.names:
            parts = [self._compacted(name, part) for part in self.parts[name]]
            self.parts[name] = []
            if name in self.id_columns:
                columns[name] = _id_column(parts)
            elif name.endswith("_us"):
                columns[name] = np.concatenate(
                    [np.asarray(part, dtype=np.float64) for part in parts] or [np.zeros(0)]
                )
            elif self._length and all(isinstance(part, EncodedStrings) for part in parts):
                columns[name] = EncodedStrings.joined(parts)
            else:
                columns[name] = _joined_column(parts)
            del parts
        self._row_lists = None
        self._length = 0

        # Rows are picked from arrays and string codes before the strings are decoded.
        # A column that pandas must infer is picked after, from the whole frame.
        if rows is not None and all(isinstance(column, (np.ndarray, EncodedStrings))
                                    for column in columns.values()):
            columns = {name: column[rows] for name, column in columns.items()}
            rows = None
        for name, column in columns.items():
            if isinstance(column, EncodedStrings):
                columns[name] = column.decoded()
        # The joined columns are new arrays, so the frame can own them without a copy.
        frame = pd.DataFrame(columns, copy=False)
        if rows is not None:
            frame = frame.take(rows).reset_index(drop=True)
        return frame


def _joined_column(parts: list[Any]) -> Any:
    """Join the parts of a column. Numpy arrays of one dtype stay an array, and encoded
    strings become a string array. Anything else becomes one list, so pandas infers its
    dtype as for the whole list."""
    # pandas infers object for an empty list, so an empty column stays one.
    if not sum(map(len, parts)):
        return []
    if all(isinstance(part, EncodedStrings) for part in parts):
        return EncodedStrings.joined(parts).decoded()
    dtypes = {part.dtype for part in parts if isinstance(part, np.ndarray)}
    if len(dtypes) == 1 and all(isinstance(part, np.ndarray) for part in parts):
        return np.concatenate(parts)
    if len(parts) == 1 and isinstance(parts[0], list):
        return parts[0]
    return list(itertools.chain.from_iterable(
        part if isinstance(part, list) else part.tolist() for part in parts
    ))


def _id_column(parts: list[list[int] | np.ndarray]) -> np.ndarray:
    """Store ids as int64 when all fit, else as exact Python ints."""
    if parts and all(isinstance(part, np.ndarray) and part.dtype == np.int64 for part in parts):
        return np.concatenate(parts)
    values = _joined_column(parts)
    try:
        return np.asarray(values, dtype=np.int64)
    except OverflowError:  # an id beyond the int64 range
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
_LINK_ID_COLUMNS = ("correlation", "external_id")


class TableBuilder:
    """Sort raw or typed events into GPU activity, runtime calls and CPU operators."""

    def __init__(self) -> None:
        self.shared = SharedValues()
        self.gpu = _Columns(GPU_COLUMNS, _LINK_ID_COLUMNS, self.shared.strings)
        self.runtime = _Columns(RUNTIME_COLUMNS, _LINK_ID_COLUMNS, self.shared.strings)
        self.cpu = _Columns(CPU_COLUMNS, ("external_id",), self.shared.strings)
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
                # A complete event with a category that is not text, or an analyzed
                # category without its phase, is damage rather than an event to skip.
                damaged_category = event.ph == "X" and not isinstance(event.cat, (str, type(None)))
                if damaged_category or (category is not None and event.ph is None):
                    self.unusable_events += 1
                continue
            ts_us = to_float(event.ts)
            dur_us = to_float(event.dur)
            if not plausible_time(ts_us, dur_us) or not isinstance(event.name, str):
                self.unusable_events += 1
                continue
            handlers[category](event, category, ts_us, dur_us)

    def add_typed(self, events: list[TypedEvent]) -> bool:
        """Add the same rows as `add_all`, built column by column from typed events.

        Returns False, having added nothing, when an input shape or type list does not
        decode. Such events must be decoded as RawEvent and given to `add_all`, which
        drops their args.
        """
        try:
            columns = typed_columns(events, self.shared)
        except ShapeNotDecodable:
            return False
        self.gpu.extend(columns.gpu)
        self.runtime.extend(columns.runtime)
        self.cpu.extend(columns.cpu)
        self.unusable_events += columns.unusable_events
        return True

    def _add_gpu(self, event: RawEvent, category: str, ts_us: float, dur_us: float) -> None:
        args = _args(event)
        device = to_int64(args.device)
        if device is None:
            device = to_int64(event.pid)
        stream = to_int64(args.stream)
        if stream is None:
            stream = to_int64(event.tid)
        correlation = to_int(args.correlation)
        grid = to_dim3(args.grid)
        block = to_dim3(args.block)
        self.gpu.append((
            category, event.name, ts_us, dur_us,
            MISSING_ID if device is None else device,
            MISSING_ID if stream is None else stream,
            MISSING_ID if correlation is None else correlation,
            _external_id(args), *grid, *block,
            to_int64(args.registers_per_thread) or 0,
            to_int64(args.shared_memory) or 0,
            to_int64(args.bytes) or 0,
        ))

    def _add_runtime(self, event: RawEvent, category: str, ts_us: float, dur_us: float) -> None:
        args = _args(event)
        correlation = to_int(args.correlation)
        self.runtime.append((
            event.name, ts_us, dur_us, to_pid_or_tid(event.pid), to_pid_or_tid(event.tid),
            MISSING_ID if correlation is None else correlation, _external_id(args),
        ))

    def _add_cpu(self, event: RawEvent, category: str, ts_us: float, dur_us: float) -> None:
        args = _args(event)
        self.cpu.append((
            event.name, ts_us, dur_us, to_pid_or_tid(event.pid), to_pid_or_tid(event.tid),
            _external_id(args),
            cat.USER_ANNOTATION if category == cat.GPU_USER_ANNOTATION else category,
            self.shared.share_list(args.input_dims),
            self.shared.share_list(args.input_types),
            category == cat.GPU_USER_ANNOTATION,
        ))

    def buffered_rows(self) -> int:
        """Rows in the three tables so far."""
        return len(self.gpu) + len(self.runtime) + len(self.cpu)

    def compact(self) -> None:
        """Store the numbers and strings of the rows added so far as arrays and string
        codes, to free their Python objects."""
        for columns in (self.gpu, self.runtime, self.cpu):
            columns.compact()

    def gpu_frame(self) -> tuple[pd.DataFrame, int]:
        """Return the GPU activity table and how many rows were set aside because their
        timestamps cannot be placed on the timeline (zero, or a day from the rest)."""
        if not len(self.gpu):
            return self.gpu.frame(), 0
        starts = self.gpu.float_column("ts_us")
        placed = starts > 0
        if placed.any():
            median_us = float(pd.Series(starts[placed]).median())
            placed &= np.abs(starts - median_us) < _TIMESTAMP_OUTLIER_US
        set_aside = int((~placed).sum())
        # The placed rows in start order (a stable sort, as DataFrame.sort_values).
        placed_rows = np.flatnonzero(placed)
        frame = self.gpu.frame(rows=placed_rows[np.argsort(starts[placed_rows], kind="stable")])
        for column in ("device", "stream", "grid_x", "grid_y", "grid_z",
                       "block_x", "block_y", "block_z", "registers_per_thread",
                       "shared_memory_bytes", "bytes"):
            frame[column] = frame[column].astype(np.int64)
        return frame, set_aside

    def runtime_frame(self) -> pd.DataFrame:
        return self.runtime.frame()

    def cpu_frame(self) -> pd.DataFrame:
        return self.cpu.frame()
