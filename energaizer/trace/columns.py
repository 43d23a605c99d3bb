"""Build table columns from a batch of typed events, a column at a time.

`TableBuilder.add_all` checks and converts every raw event in Python, one at a time.
Here the same checks run over whole columns of `TypedEvent` values, whose types msgspec
has already checked: list comprehensions pick the fields, and numpy finds the rows with
a missing or invalid time and the sizes outside the int64 range. The rows, their order
and their values are those that `add_all` builds from the same events. A numeric column
becomes a numpy array only when pandas would infer that dtype from the list `add_all`
builds. Otherwise it stays a list.

Every step repeats the same names and shapes. Names and categories are stored as codes
into a table of the distinct strings until the frame is built, and input shapes are
decoded once per distinct JSON text, so the rows that repeat one share one list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa
from msgspec import UNSET

from energaizer.trace import categories as cat
from energaizer.trace.events import ANY_DECODER, TypedArgs, TypedEvent
from energaizer.trace.model import MISSING_ID
from energaizer.trace.values import (
    INT64_MAX,
    INT64_MIN,
    MAX_DURATION_US,
    MAX_TIMESTAMP_US,
    to_int64,
    to_pid_or_tid,
)

_GPU, _RUNTIME, _CPU = 0, 1, 2
_TABLE_OF_CANONICAL = {
    cat.KERNEL: _GPU,
    cat.MEMCPY: _GPU,
    cat.MEMSET: _GPU,
    cat.RUNTIME: _RUNTIME,
    cat.CPU_OP: _CPU,
    cat.USER_ANNOTATION: _CPU,
    cat.GPU_USER_ANNOTATION: _CPU,
}
_NO_ARGS = TypedArgs()
_NO_DIM3 = (0, 0, 0)

# pandas 3 infers a pyarrow-backed string dtype for a list of strings, and pandas 2
# infers object.
_STRING_DTYPE = pd.Series(["text"]).dtype
_ARROW_STRINGS = (
    isinstance(_STRING_DTYPE, pd.StringDtype) and _STRING_DTYPE.storage == "pyarrow"
)


class EncodedStrings:
    """A column part of strings, stored as codes into a table of the distinct strings."""

    __slots__ = ("codes", "table")

    def __init__(self, codes: np.ndarray, table: StringTable) -> None:
        self.codes = codes
        self.table = table

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, rows: np.ndarray) -> EncodedStrings:
        return EncodedStrings(self.codes[rows], self.table)

    @staticmethod
    def joined(parts: list[EncodedStrings]) -> EncodedStrings:
        """Join parts that share one table."""
        return EncodedStrings(np.concatenate([part.codes for part in parts]), parts[0].table)

    def tolist(self) -> list[str]:
        return list(map(self.table.strings.__getitem__, self.codes.tolist()))

    def decoded(self) -> Any:
        """Return the strings as the array pandas infers for a list of them."""
        if _ARROW_STRINGS:
            dictionary = pa.array(self.table.strings, type=pa.large_string())
            indices = pa.array(self.codes, type=pa.int32())
            plain = pa.DictionaryArray.from_arrays(indices, dictionary).cast(pa.large_string())
            return pd.array(plain, dtype=_STRING_DTYPE)
        return np.array(self.table.strings, dtype=object)[self.codes]


class StringTable:
    """Distinct strings, numbered as they first appear."""

    def __init__(self) -> None:
        self.strings: list[str] = []
        self._code_of: dict[str, int] = {}

    def encode(self, values: list[str]) -> EncodedStrings:
        code_of = self._code_of
        for value in set(values).difference(code_of):
            code_of[value] = len(self.strings)
            self.strings.append(value)
        codes = np.fromiter(map(code_of.__getitem__, values), dtype=np.int32, count=len(values))
        return EncodedStrings(codes, self)


class ShapeNotDecodable(Exception):
    """An input shape or type list that is valid JSON to skip but does not decode."""


class SharedValues:
    """Strings, and input shape and type lists, stored once per distinct value for
    every batch of a trace."""

    def __init__(self) -> None:
        self.strings = StringTable()
        # An empty text is an absent key.
        self._by_text: dict[bytes, Any] = {b"": None}
        self._by_encoding: dict[bytes, list] = {}

    def lists_from_texts(self, texts: list[msgspec.Raw]) -> list[list | None]:
        """Decode JSON texts once per distinct text. Values that are not lists become
        None, and a text that does not decode raises ShapeNotDecodable."""
        keys = list(map(bytes, texts))
        by_text = self._by_text
        for key in set(keys).difference(by_text):
            try:
                value = ANY_DECODER.decode(key)
            except (msgspec.DecodeError, RecursionError):
                raise ShapeNotDecodable(key[:80]) from None
            by_text[key] = value if isinstance(value, list) else None
        return list(map(by_text.__getitem__, keys))

    def share_list(self, value: Any) -> list | None:
        """Return a stored list equal to `value`, or None when `value` is not a list."""
        if not isinstance(value, list):
            return None
        return self._by_encoding.setdefault(msgspec.json.encode(value), value)


@dataclass
class TypedColumns:
    """Columns of the three tables built from one batch of typed events."""

    gpu: dict[str, Any]
    runtime: dict[str, Any]
    cpu: dict[str, Any]
    unusable_events: int


def typed_columns(events: list[TypedEvent], shared: SharedValues) -> TypedColumns:
    """Sort complete (`ph` "X") events of the categories the analysis uses into the
    columns of the three tables. Raises ShapeNotDecodable when an input shape or type
    list does not decode."""
    tables: tuple[list[TypedEvent], ...] = ([], [], [])
    appenders = {
        raw: tables[_TABLE_OF_CANONICAL[canonical]].append
        for raw, canonical in cat.RAW_TO_CANONICAL.items()
    }
    unusable = 0
    for event in events:
        append = appenders.get(event.cat)  # type: ignore[arg-type]
        if append is not None and event.ph == "X":
            append(event)
        elif append is not None and event.ph is None:
            unusable += 1  # an analyzed category without its phase is damage

    columns = []
    for rows in tables:
        usable, times = _usable_rows(rows)
        unusable += len(rows) - len(usable)
        columns.append((usable, times))
    return TypedColumns(
        gpu=_gpu_columns(*columns[_GPU], shared),
        runtime=_runtime_columns(*columns[_RUNTIME], shared),
        cpu=_cpu_columns(*columns[_CPU], shared),
        unusable_events=unusable,
    )


@dataclass
class _Times:
    names: list[str]
    ts_us: np.ndarray
    dur_us: np.ndarray


def _usable_rows(rows: list[TypedEvent]) -> tuple[list[TypedEvent], _Times]:
    """Keep the rows with a name and a plausible start and duration (see
    `values.plausible_time`)."""
    names = [event.name for event in rows]
    # None becomes NaN in a float array, and msgspec rejects numbers beyond the float
    # range, so a finite value here is one `to_float` accepts.
    ts_us = np.array([event.ts for event in rows], dtype=np.float64)
    dur_us = np.array([event.dur for event in rows], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        invalid = (~np.isfinite(ts_us) | ~np.isfinite(dur_us) | (dur_us < 0)
                   | (dur_us > MAX_DURATION_US) | (np.abs(ts_us) >= MAX_TIMESTAMP_US))
    if None in names:
        invalid |= np.array([name is None for name in names], dtype=bool)
    if invalid.any():
        keep = ~invalid
        rows = [event for event, kept in zip(rows, keep.tolist()) if kept]
        names = [event.name for event in rows]
        ts_us = ts_us[keep]
        dur_us = dur_us[keep]
    return rows, _Times(names, ts_us, dur_us)  # type: ignore[arg-type]


def _args_of(rows: list[TypedEvent]) -> list[TypedArgs]:
    args = [event.args for event in rows]
    if None in args:
        return [value if value is not None else _NO_ARGS for value in args]
    return args  # type: ignore[return-value]


def _gpu_columns(rows: list[TypedEvent], times: _Times, shared: SharedValues) -> dict[str, Any]:
    args = _args_of(rows)
    grid = _dim3_columns([value.grid for value in args])
    block = _dim3_columns([value.block for value in args])
    return {
        "category": shared.strings.encode(
            [cat.RAW_TO_CANONICAL[event.cat] for event in rows]  # type: ignore[index]
        ),
        "name": shared.strings.encode(times.names),
        "ts_us": times.ts_us,
        "dur_us": times.dur_us,
        "device": _int64_or_fallback([value.device for value in args],
                                     [event.pid for event in rows]),
        "stream": _int64_or_fallback([value.stream for value in args],
                                     [event.tid for event in rows]),
        "correlation": _ids([value.correlation for value in args]),
        "external_id": _external_ids(args),
        "grid_x": grid[:, 0],
        "grid_y": grid[:, 1],
        "grid_z": grid[:, 2],
        "block_x": block[:, 0],
        "block_y": block[:, 1],
        "block_z": block[:, 2],
        "registers_per_thread": _int64_or_zero([value.registers_per_thread for value in args]),
        "shared_memory_bytes": _int64_or_zero([value.shared_memory for value in args]),
        "bytes": _int64_or_zero([value.bytes for value in args]),
    }


def _host_columns(rows: list[TypedEvent], times: _Times,
                  shared: SharedValues) -> dict[str, Any]:
    """Return the name, time, process and thread columns of runtime and CPU events."""
    return {
        "name": shared.strings.encode(times.names),
        "ts_us": times.ts_us,
        "dur_us": times.dur_us,
        "pid": _pids_or_tids([event.pid for event in rows]),
        "tid": _pids_or_tids([event.tid for event in rows]),
    }


def _runtime_columns(rows: list[TypedEvent], times: _Times,
                     shared: SharedValues) -> dict[str, Any]:
    args = _args_of(rows)
    return {
        **_host_columns(rows, times, shared),
        "correlation": _ids([value.correlation for value in args]),
        "external_id": _external_ids(args),
    }


def _cpu_columns(rows: list[TypedEvent], times: _Times, shared: SharedValues) -> dict[str, Any]:
    args = _args_of(rows)
    on_gpu = np.array([event.cat == "gpu_user_annotation" for event in rows], dtype=bool)
    canonical = [cat.RAW_TO_CANONICAL[event.cat] for event in rows]  # type: ignore[index]
    if on_gpu.any():
        canonical = [cat.USER_ANNOTATION if gpu else category
                     for gpu, category in zip(on_gpu.tolist(), canonical)]
    return {
        **_host_columns(rows, times, shared),
        "external_id": _external_ids(args),
        "category": shared.strings.encode(canonical),
        "input_dims": shared.lists_from_texts([value.input_dims for value in args]),
        "input_types": shared.lists_from_texts([value.input_types for value in args]),
        "on_gpu": on_gpu,
    }


def _int64_array(values: list[Any]) -> np.ndarray | None:
    """Return `values` as an int64 array, or None when one is None or beyond int64."""
    try:
        return np.array(values, dtype=np.int64)
    except (TypeError, OverflowError):  # TypeError: a None
        return None


def _int64_or_fallback(values: list[int | None],
                       fallbacks: list[int | str | None]) -> np.ndarray:
    """Return each value that fits int64, else its fallback read as an int64, else
    MISSING_ID."""
    array = _int64_array(values)
    if array is not None:
        return array
    result = []
    for value, fallback in zip(values, fallbacks):
        if value is None or not INT64_MIN <= value <= INT64_MAX:
            value = to_int64(fallback)
        result.append(MISSING_ID if value is None else value)
    return np.array(result, dtype=np.int64)


def _int64_or_zero(values: list[int | None]) -> np.ndarray:
    array = _int64_array(values)
    if array is not None:
        return array
    return np.array([value if value is not None and INT64_MIN <= value <= INT64_MAX else 0
                     for value in values], dtype=np.int64)


def _ids(values: list[int | None]) -> np.ndarray | list[int]:
    """Return exact ids of any size, with MISSING_ID for a missing one. The result is an
    int64 array when every id fits, else a list."""
    if None in values:
        values = [MISSING_ID if value is None else value for value in values]
    array = _int64_array(values)
    return values if array is None else array  # type: ignore[return-value]


def _external_ids(args: list[TypedArgs]) -> np.ndarray | list[int]:
    """Read "External id", or "external id" where the first spelling is absent."""
    values: list[Any] = [value.external_id for value in args]
    if UNSET in values:
        lowercase = [value.external_id_lowercase for value in args]
        values = [low if value is UNSET else value for value, low in zip(values, lowercase)]
        values = [None if value is UNSET else value for value in values]
    return _ids(values)


def _dim3_columns(values: list[tuple[int, int, int] | None]) -> np.ndarray:
    """Return CUDA sizes as an (n, 3) int64 array. A missing size, or one with a
    negative item or an item beyond int64, becomes (0, 0, 0)."""
    if None in values:
        values = [_NO_DIM3 if value is None else value for value in values]
    sizes = _int64_array(values)
    if sizes is None:
        fitting = [value if _int64_array(list(value)) is not None else _NO_DIM3
                   for value in values]  # type: ignore[arg-type]
        sizes = np.array(fitting, dtype=np.int64)
    sizes = sizes.reshape(len(values), 3)
    sizes[(sizes < 0).any(axis=1)] = 0
    return sizes


def _pids_or_tids(values: list[int | str | None]) -> np.ndarray | list[int | str]:
    """Return integer pids and tids as an int64 array when all fit, else as a list of
    the ints and strings that `to_pid_or_tid` returns."""
    # Without a dtype, numpy makes an int64 array only of integers that all fit int64.
    # Strings, None or larger integers give another dtype or an OverflowError.
    try:
        array = np.array(values)
    except OverflowError:
        array = None
    if array is not None and array.dtype == np.int64 and len(array):
        return array
    return [value if type(value) is int else to_pid_or_tid(value) for value in values]
