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
_ARRAY_END = re.compile(rb"\}\s*\]")
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_WHITESPACE = b" \t\r\n"
# A JSON string literal, and the whitespace bytes JSON allows between tokens but not raw
# inside strings.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_STRING_WHITESPACE_ESCAPES = {b"\t": b"\\t", b"\n": b"\\n", b"\r": b"\\r"}
_UTF8_BOM = b"\xef\xbb\xbf"
# msgspec (0.23, with Python's default recursion limit) raises RecursionError for values
# nested 1000 levels deep. To the scanner that is one more piece that does not parse.
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)

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
        next_event = data.find(b"{", first)
        if next_event < 0 or _closes_file(data[first + 1 :], result.form):
            result.metadata = extract_metadata(data[:array_start] + data[first + 1 :])
            return result
        # Events follow this `]`, so it is damage, not the end of an empty array.
        first = next_event

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
        # A `},{` inside the last event (in its args) splits it into pieces whose
        # final one has no boundary after it, so joins cannot reach the event's end.
        # Metadata after the array can hold `},{` too, adding pieces after the last event.
        if len(starts) - 1 - index <= _MAX_JOINED_PIECES:
            after = _decode_final_event(data, starts[index], result, repair)
            if after is not None:
                return after
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
    """Decode the final event, whose end is the first `}` after which it parses; return
    the offset after the event array."""
    after = _decode_last_event(data, start, result, repair)
    if after is not None:
        return after
    if result.first_problem_offset is None:
        result.first_problem_offset = start
    if data.find(b"]", start) < 0:
        result.truncated = True
    else:
        result.skipped_events += 1
    return len(data)


def _decode_final_event(data: bytes, start: int, result: ScanResult, repair: bool) -> int | None:
    """Decode the event at `start` as the array's last one, but only when what follows
    it is a complete end of file: `]` and nothing, or `]` and the rest of the top-level
    object. Return the offset after the array, or None with nothing recorded."""
    for count, match in enumerate(_ARRAY_END.finditer(data, start)):
        if count >= _MAX_LAST_EVENT_ENDS:
            break
        tail = data[match.end() :].strip(_WHITESPACE)
        if tail and not _is_object_tail(tail):
            continue
        event = _decode_event(data[start : match.start() + 1], result, repair)
        if event is not None:
            result.events.append(event)
            return match.end()
    return None


def _closes_file(after_array: bytes, form: str) -> bool:
    """True when the bytes after an event array end the file validly for its form."""
    tail = after_array.strip(_WHITESPACE)
    if form == "array":
        return not tail
    return bool(tail) and _is_object_tail(tail)


def _is_object_tail(tail: bytes) -> bool:
    """True when `tail` (after the event array) closes the top-level object validly."""
    if tail.startswith(b","):
        tail = tail[1:]
    try:
        return isinstance(ANY_DECODER.decode(b"{" + tail), dict)
    except _DECODE_ERRORS:
        return False


def _decode_last_event(data: bytes, start: int, result: ScanResult, repair: bool) -> int | None:
    """Decode an event that starts at `start` and ends at the first `}` after which it
    parses. Return the offset after the event array, or None when no end parses."""
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
    return None


def _decode_event(segment: bytes, result: ScanResult, repair: bool) -> RawEvent | None:
    """Decode one event; with `repair`, retry after replacing invalid UTF-8 and raw
    control bytes, counting what was replaced."""
    try:
        return EVENT_DECODER.decode(segment)
    except _DECODE_ERRORS:
        if not repair:
            return None
    repaired, replaced = _repair(segment)
    if replaced == 0:
        return None
    try:
        event = EVENT_DECODER.decode(repaired)
    except _DECODE_ERRORS:
        return None
    result.repaired_events += 1
    result.replaced_bytes += replaced
    return event


def _repair(segment: bytes) -> tuple[bytes, int]:
    """Replace invalid UTF-8 with U+FFFD, raw control bytes with spaces, and raw tabs,
    newlines and carriage returns inside strings with their JSON escapes."""
    text = segment.decode("utf-8", errors="replace")
    replaced = text.count("\ufffd") - segment.decode("utf-8", errors="ignore").count("\ufffd")
    fixed, controls = _CONTROL_BYTES.subn(b" ", text.encode("utf-8"))
    escaped = 0

    def escape_whitespace(match: re.Match[bytes]) -> bytes:
        nonlocal escaped
        string = match.group(0)
        escaped += sum(string.count(byte) for byte in _STRING_WHITESPACE_ESCAPES)
        for byte, escape in _STRING_WHITESPACE_ESCAPES.items():
            string = string.replace(byte, escape)
        return string

    fixed = _JSON_STRING.sub(escape_whitespace, fixed)
    return fixed, replaced + controls + escaped


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
    except _DECODE_ERRORS:
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
