"""Locate events inside trace JSON that cannot be parsed as a whole.

Used to say where a broken file breaks (byte offset and event index), to count the
events before a truncation, and by lenient reading to keep every event that parses.
Events are split at `},{` boundaries; a piece that does not parse alone is retried
joined with the following pieces (a boundary can sit inside nested `args`), and skipped
when no join parses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from energaizer.trace.events import ANY_DECODER, EVENT_DECODER, RawEvent

_BOUNDARY = re.compile(rb"\}\s*,\s*\{")
_EVENTS_KEY = re.compile(rb'"traceEvents"\s*:\s*\[')
_CLOSE_BRACE = re.compile(rb"\}")
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_WHITESPACE = b" \t\r\n"
_UTF8_BOM = b"\xef\xbb\xbf"

# Joins tried for a piece that does not parse alone, and candidate ends tried for the
# last event, whose end is not marked by a boundary.
_MAX_JOINED_PIECES = 16
_MAX_LAST_EVENT_ENDS = 256

# Top-level keys that carry metadata the analysis uses.
METADATA_KEYS = (
    "deviceProperties",
    "distributedInfo",
    "schemaVersion",
    "displayTimeUnit",
    "baseTimeNanoseconds",
    "cuda_runtime_version",
    "cuda_driver_version",
    "traceName",
)


@dataclass
class ScanResult:
    """Events recovered by the scanner and what could not be recovered."""

    events: list[RawEvent] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    form: str = "object"
    skipped_events: int = 0
    repaired_events: int = 0
    replaced_bytes: int = 0
    truncated: bool = False
    first_problem_offset: int | None = None


def first_content_offset(data: bytes) -> int:
    """Return the offset of the first byte after a UTF-8 byte-order mark and whitespace."""
    start = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    while start < len(data) and data[start] in _WHITESPACE:
        start += 1
    return start


def events_array_start(data: bytes) -> tuple[int, str] | None:
    """Return the offset just after the `[` that opens the event array, and the form
    ("object" or "array"); None when the file has no event array."""
    start = first_content_offset(data)
    if data[start : start + 1] == b"[":
        return start + 1, "array"
    match = _EVENTS_KEY.search(data, start)
    if match is None:
        return None
    return match.end(), "object"


def event_index_at(data: bytes, offset: int) -> int | None:
    """Return the zero-based index of the event that contains byte `offset`."""
    located = events_array_start(data)
    if located is None or offset < located[0]:
        return None
    return sum(1 for _ in _BOUNDARY.finditer(data, located[0], offset))


def scan_events(data: bytes, repair: bool = True) -> ScanResult:
    """Recover every event that parses, and the metadata outside the event array."""
    result = ScanResult()
    located = events_array_start(data)
    if located is None:
        return result
    array_start, result.form = located
    first = array_start
    while first < len(data) and data[first] in _WHITESPACE:
        first += 1
    if first >= len(data):
        result.truncated = True
        result.metadata = extract_metadata(data[:array_start])
        return result
    if data[first : first + 1] == b"]":
        result.metadata = extract_metadata(data[:array_start] + data[first + 1 :])
        return result

    starts = [first] + [m.end() - 1 for m in _BOUNDARY.finditer(data, first)]
    tail_start = _scan_pieces(data, starts, result, repair)
    result.metadata = extract_metadata(data[:array_start] + b" " + data[tail_start:])
    return result


def _scan_pieces(data: bytes, starts: list[int], result: ScanResult, repair: bool) -> int:
    """Decode the pieces that start at `starts`; return the offset after the last event."""
    index = 0
    while index < len(starts) - 1:
        joined = _decode_joined(data, starts, index, result, repair)
        if joined:
            index += joined
            continue
        result.skipped_events += 1
        if result.first_problem_offset is None:
            result.first_problem_offset = starts[index]
        index += 1
    return _scan_last_event(data, starts[-1], result, repair)


def _decode_joined(
    data: bytes, starts: list[int], index: int, result: ScanResult, repair: bool
) -> int:
    """Decode the piece at `index`, joined with up to a few following pieces when it
    does not parse alone; return how many pieces were used, 0 when none parsed."""
    last = min(index + _MAX_JOINED_PIECES, len(starts) - 1)
    for end_index in range(index + 1, last + 1):
        segment = data[starts[index] : _piece_end(data, starts[end_index])]
        event = _decode_event(segment, result, repair and end_index == index + 1)
        if event is not None:
            result.events.append(event)
            return end_index - index
    return 0


def _piece_end(data: bytes, next_start: int) -> int:
    """Return the offset just after the `}` that precedes the next piece's `{`."""
    return data.rindex(b"}", 0, next_start) + 1


def _scan_last_event(data: bytes, start: int, result: ScanResult, repair: bool) -> int:
    """Decode the final event, whose end is the first `}` after which it parses."""
    for count, match in enumerate(_CLOSE_BRACE.finditer(data, start)):
        if count >= _MAX_LAST_EVENT_ENDS:
            break
        event = _decode_event(data[start : match.end()], result, repair)
        if event is None:
            continue
        result.events.append(event)
        after = match.end()
        while after < len(data) and data[after] in _WHITESPACE + b",":
            after += 1
        if after >= len(data):
            result.truncated = True
        return after + 1 if data[after : after + 1] == b"]" else after

    if result.first_problem_offset is None:
        result.first_problem_offset = start
    if data.find(b"]", start) < 0:
        result.truncated = True
    else:
        result.skipped_events += 1
    return len(data)


def _decode_event(segment: bytes, result: ScanResult, repair: bool) -> RawEvent | None:
    """Decode one event; with `repair`, retry after replacing invalid UTF-8 and raw
    control bytes, counting what was replaced."""
    try:
        return EVENT_DECODER.decode(segment)
    except (msgspec.DecodeError, msgspec.ValidationError):
        if not repair:
            return None
    repaired, replaced = _repair(segment)
    if replaced == 0:
        return None
    try:
        event = EVENT_DECODER.decode(repaired)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    result.repaired_events += 1
    result.replaced_bytes += replaced
    return event


def _repair(segment: bytes) -> tuple[bytes, int]:
    """Replace invalid UTF-8 with U+FFFD and raw control bytes with spaces."""
    text = segment.decode("utf-8", errors="replace")
    replaced = text.count("\ufffd") - segment.decode("utf-8", errors="ignore").count("\ufffd")
    fixed, controls = _CONTROL_BYTES.subn(b" ", text.encode("utf-8"))
    return fixed, replaced + controls


def extract_metadata(region: bytes) -> dict[str, Any]:
    """Read the known top-level metadata keys from bytes outside the event array."""
    metadata: dict[str, Any] = {}
    for key in METADATA_KEYS:
        match = re.search(b'"' + key.encode() + rb'"\s*:\s*', region)
        if match is None:
            continue
        value = _decode_value_at(region, match.end())
        if value is not _MISSING:
            metadata[key] = value
    return metadata


_MISSING = object()


def _decode_value_at(region: bytes, start: int) -> Any:
    """Decode the JSON value that starts at `start`, or return _MISSING."""
    end = _value_end(region, start)
    if end is None:
        return _MISSING
    try:
        return ANY_DECODER.decode(region[start:end])
    except msgspec.DecodeError:
        return _MISSING


def _value_end(region: bytes, start: int) -> int | None:
    """Return the offset just after the JSON value at `start`, tracking strings and
    brackets; None when the value does not end inside `region`."""
    opener = region[start : start + 1]
    if opener not in (b"{", b"[", b'"'):
        match = re.compile(rb"[,}\]\s]").search(region, start)
        return match.start() if match else len(region)
    depth = 0
    in_string = False
    escaped = False
    for offset in range(start, len(region)):
        byte = region[offset]
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
                if depth == 0:
                    return offset + 1
            continue
        if byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):
            depth += 1
        elif byte in (0x7D, 0x5D):
            depth -= 1
            if depth == 0:
                return offset + 1
    return None
