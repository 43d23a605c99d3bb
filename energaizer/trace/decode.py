"""Turn trace bytes into raw events and top-level metadata.

The strict path decodes the whole file in one pass with msgspec. When it fails, the
error names the byte offset and the event index. Lenient reading falls back to the
scanner, which keeps every event that parses and counts what it dropped or repaired.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from energaizer.errors import TraceError, TruncatedTraceError
from energaizer.trace.events import (
    ANY_DECODER,
    EVENT_LIST_DECODER,
    TOP_LEVEL_DECODER,
    TYPED_EVENT_LIST_DECODER,
    RawEvent,
    TypedEvent,
)
from energaizer.trace.scan import (
    METADATA_KEYS,
    event_index_at,
    events_array_start,
    first_content_offset,
    scan_events,
)

_BYTE_IN_MESSAGE = re.compile(r"\(byte (\d+)\)")
_INDEX_IN_PATH = re.compile(r"\$\[(\d+)\]")
_LENIENT_HINT = "Repair the file, or pass --lenient to keep the events that parse."
_TRUNCATED_HINT = ("Record or copy it again, or pass --lenient to estimate from the complete "
                   "events (totals become lower bounds).")


@dataclass
class ReadReport:
    """Events that reading a trace skipped, repaired or left out."""

    lenient: bool = False
    skipped_events: int = 0
    repaired_events: int = 0
    replaced_bytes: int = 0
    truncated: bool = False
    problem: str | None = None

    @property
    def complete(self) -> bool:
        """True when every event of the file was read as written."""
        return not (self.skipped_events or self.repaired_events or self.truncated)


@dataclass
class DecodedTrace:
    """Raw events and metadata of one trace file."""

    events: list[RawEvent]
    metadata: dict[str, Any]
    form: str
    report: ReadReport = field(default_factory=ReadReport)


@dataclass
class TypedTrace:
    """Typed events and metadata of one well-formed trace file."""

    events: list[TypedEvent]
    metadata: dict[str, Any]
    form: str


def decode_typed_trace(data: bytes) -> TypedTrace | None:
    """Decode a well-formed trace into typed events in one pass.

    Returns None when any value has an unexpected type or the file is not valid JSON.
    `decode_trace` then reads it, and raises its located errors or recovers leniently.
    """
    start = first_content_offset(data)
    opening = data[start : start + 1]
    try:
        if opening == b"[":
            return TypedTrace(TYPED_EVENT_LIST_DECODER.decode(data), {}, "array")
        if opening != b"{":
            return None
        top_level = TOP_LEVEL_DECODER.decode(data)
        raw_events = top_level.get("traceEvents")
        if raw_events is None:
            return None
        events = TYPED_EVENT_LIST_DECODER.decode(raw_events)
        metadata = {
            key: ANY_DECODER.decode(top_level[key]) for key in METADATA_KEYS if key in top_level
        }
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return None
    return TypedTrace(events, metadata, "object")


def decode_trace(data: bytes, path: str, lenient: bool = False) -> DecodedTrace:
    """Decode trace JSON; raise TraceError unless `lenient` lets the scanner recover."""
    start = first_content_offset(data)
    if start >= len(data):
        raise TraceError(f"{path}: the file is empty.", path=path)
    if data[start : start + 1] not in (b"{", b"["):
        raise TraceError(
            f"{path}: not JSON: the file starts with {data[start:start + 12]!r}, "
            "expected '{' or '['. Give a PyTorch profiler trace (.json or .json.gz).",
            path=path,
            byte_offset=start,
        )
    try:
        return _decode_strict(data, path)
    except TraceError as error:
        if not lenient:
            raise
        return _decode_lenient(data, path, str(error))


def _decode_strict(data: bytes, path: str) -> DecodedTrace:
    """Decode the whole file at once; raise a located TraceError when it is invalid."""
    try:
        return _decode_strict_unguarded(data, path)
    except RecursionError:
        # msgspec (0.23, with Python's default recursion limit) raises RecursionError,
        # with no byte offset, for values nested 1000 levels deep.
        raise TraceError(
            f"{path}: invalid trace JSON: a value is nested deeper than the decoder "
            f"allows (about 1000 levels). {_LENIENT_HINT}",
            path=path,
        ) from None


def _decode_strict_unguarded(data: bytes, path: str) -> DecodedTrace:
    try:
        if data[first_content_offset(data)] == ord("["):
            return DecodedTrace(EVENT_LIST_DECODER.decode(data), {}, "array")
        top_level = TOP_LEVEL_DECODER.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise _located_error(data, path, error) from None

    raw_events = top_level.get("traceEvents")
    if raw_events is None:
        raise TraceError(
            f"{path}: the JSON object has no 'traceEvents' array, so it is not a "
            "Chrome trace. Give a PyTorch profiler trace.",
            path=path,
        )
    # Decoding into msgspec.Raw skips string contents unchecked, so invalid UTF-8 inside
    # the event array or a metadata value surfaces only in these second decodes.
    try:
        events = EVENT_LIST_DECODER.decode(raw_events)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise _located_error(data, path, error, inside_events=True) from None
    try:
        metadata = {
            key: ANY_DECODER.decode(top_level[key]) for key in METADATA_KEYS if key in top_level
        }
    except msgspec.DecodeError as error:
        raise _located_error(data, path, error) from None
    return DecodedTrace(events, metadata, "object")


def _located_error(
    data: bytes, path: str, error: Exception, inside_events: bool = False
) -> TraceError:
    """Build a TraceError that names where in the file decoding failed."""
    message = str(error)
    offset = _error_offset(data, message)
    # A value cut off by the end of the file is reported as invalid at the last byte.
    at_end = offset is not None and offset >= len(data.rstrip())
    if "truncated" in message or at_end:
        complete = len(scan_events(data, repair=False).events)
        return TruncatedTraceError(
            f"{path}: the trace is truncated after {complete} complete events. "
            f"{_TRUNCATED_HINT}",
            path=path,
            complete_events=complete,
        )
    index = event_index_at(data, offset) if offset is not None else None
    if inside_events or index is None:
        path_match = _INDEX_IN_PATH.search(message)
        if path_match:
            index = int(path_match.group(1))
    where = []
    if offset is not None:
        where.append(f"byte {offset}")
    if index is not None:
        where.append(f"event {index}")
    location = f" at {', '.join(where)}" if where else ""
    return TraceError(
        f"{path}: invalid trace JSON{location}: {message}. {_LENIENT_HINT}",
        path=path,
        byte_offset=offset,
        event_index=index,
    )


def _error_offset(data: bytes, message: str) -> int | None:
    """Return the byte offset named in a decoder message, or of the first invalid UTF-8."""
    match = _BYTE_IN_MESSAGE.search(message)
    if match:
        return int(match.group(1))
    if "UTF-8" in message:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as error:
            return error.start
    return None


def _decode_lenient(data: bytes, path: str, problem: str) -> DecodedTrace:
    """Recover the events that parse; fail only when none do."""
    # The strict error's advice to pass --lenient no longer applies.
    problem = problem.removeprefix(f"{path}: ").replace(
        _LENIENT_HINT, "Repair the file.").replace(_TRUNCATED_HINT, "Record or copy it again.")
    if events_array_start(data) is None:
        raise TraceError(f"{path}: no 'traceEvents' array was found. {problem}", path=path)
    scanned = scan_events(data)
    report = ReadReport(
        lenient=True,
        skipped_events=scanned.skipped_events,
        repaired_events=scanned.repaired_events,
        replaced_bytes=scanned.replaced_bytes,
        truncated=scanned.truncated,
        problem=problem,
    )
    if not scanned.events:
        raise TraceError(f"{path}: no event could be read, even leniently. {problem}", path=path)
    return DecodedTrace(scanned.events, scanned.metadata, scanned.form, report)
