"""Read large trace files in batches of events, in bounded memory.

The file is read (and gunzipped) in chunks. The bytes of the `traceEvents` array are cut
into batches at event boundaries (`}` `,` `{` outside any string). Each batch is decoded
with the typed event decoder and its columns are built in bulk; a batch with a value of
an unexpected type is decoded as raw events and checked one event at a time. Rows built
one at a time become compact column arrays every few hundred thousand rows.

A cut is accepted only when the bytes before it decode as a list of events, which is
impossible when the cut lies inside a string or inside an event. Some files need the
whole-file reader: an event that does not decode, a truncated or corrupt file, or an
unusual top level. For those, reading returns None. The caller then reads the whole file,
which raises the located error or, with `lenient`, recovers what it can.
"""

from __future__ import annotations

import itertools
import logging
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from energaizer.trace.decode import DecodedTrace, ReadReport
from energaizer.trace.events import (
    ANY_DECODER,
    EVENT_LIST_DECODER,
    TOP_LEVEL_DECODER,
    TYPED_EVENT_LIST_DECODER,
)
from energaizer.trace.model import Trace
from energaizer.trace.scan import METADATA_KEYS, events_array_start, first_content_offset
from energaizer.trace.source import GZIP_MAGIC
from energaizer.trace.tables import TableBuilder

logger = logging.getLogger(__name__)

# Files at least this large on disk are streamed. A gzip file counts as larger because
# Kineto JSON typically compresses 10 to 20 times.
STREAM_THRESHOLD_BYTES = 64 << 20
GZIP_SIZE_FACTOR = 8

READ_BYTES = 8 << 20
FLUSH_ROWS = 200_000

# Bytes before the event array (the top-level object's first keys) kept while looking
# for `"traceEvents": [`; beyond this the file is left to the whole-file reader.
_MAX_PREFIX_BYTES = 64 << 20
# Candidate cuts tried per batch. Only cuts inside strings, nested args or metadata
# after the array fail, so a few tries are enough.
_MAX_CUT_TRIES = 32

# msgspec raises RecursionError, not DecodeError, for values nested about 1000 deep.
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)
_BOUNDARY = re.compile(rb"\}\s*,\s*\{")
_ARRAY_END = re.compile(rb"\}\s*\]")

ProgressCallback = Callable[[int, int], None]


class _Fallback(Exception):
    """The stream cannot be read batch by batch; read the whole file instead."""


def should_stream(path: Path) -> bool:
    """Return True when `path` is large enough for the streaming reader."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            compressed = handle.read(2) == GZIP_MAGIC
    except OSError:
        return False
    effective = size * GZIP_SIZE_FACTOR if compressed else size
    return effective >= STREAM_THRESHOLD_BYTES


def read_large_trace(
    path: Path, lenient: bool = False, progress: ProgressCallback | None = None
) -> Trace | None:
    """Stream `path` when it is above the size threshold.

    Returns None for a smaller file, and for a file that must be read whole because it
    contains an error to locate or needs a lenient recovery.
    """
    if not should_stream(path):
        return None
    return stream_trace(path, lenient=lenient, progress=progress)


def stream_trace(
    path: Path,
    lenient: bool = False,
    progress: ProgressCallback | None = None,
    *,
    read_bytes: int = READ_BYTES,
    flush_rows: int = FLUSH_ROWS,
) -> Trace | None:
    """Read `path` batch by batch into a Trace; return None when it must be read whole.

    `progress` is called with (bytes read from disk, file size in bytes) after each
    chunk. `lenient` does not change a clean read: a file that needs leniency makes this
    return None.
    """
    reader = _StreamReader(flush_rows)
    try:
        reader.read(_file_chunks(path, read_bytes, progress))
    except _Fallback as reason:
        logger.info("%s: reading the whole file instead of streaming: %s", path, reason)
        return None
    return reader.trace(str(path), lenient)


def _file_chunks(
    path: Path, read_bytes: int, progress: ProgressCallback | None
) -> Iterator[bytes]:
    """Yield the decompressed contents of `path` in chunks of at most `read_bytes`."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the `with` below
        total_bytes = path.stat().st_size
    except OSError as error:
        raise _Fallback(f"cannot open the file: {error}") from None
    with handle:
        compressed = handle.read(2) == GZIP_MAGIC
        handle.seek(0)
        raw_chunks = _raw_chunks(handle, read_bytes, total_bytes, progress)
        if compressed:
            yield from _gunzip_chunks(raw_chunks, read_bytes)
        else:
            yield from raw_chunks


def _raw_chunks(
    handle: BinaryIO, read_bytes: int, total_bytes: int, progress: ProgressCallback | None
) -> Iterator[bytes]:
    done_bytes = 0
    while chunk := handle.read(read_bytes):
        done_bytes += len(chunk)
        if progress is not None:
            progress(done_bytes, total_bytes)
        yield chunk


def _gunzip_chunks(raw_chunks: Iterator[bytes], read_bytes: int) -> Iterator[bytes]:
    """Decompress every gzip member into pieces of at most `read_bytes`. A corrupt or
    truncated stream raises _Fallback, so the whole-file reader can report it."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    # The empty chunk at the end drains output that the size limit held back.
    for raw in itertools.chain(raw_chunks, [b""]):
        while True:
            try:
                piece = inflater.decompress(raw, read_bytes)
            except zlib.error as error:
                raise _Fallback(f"gzip data is corrupt: {error}") from None
            if piece:
                yield piece
            if inflater.eof:
                # A concatenated gzip file starts its next member right after this one.
                raw = inflater.unused_data.lstrip(b"\x00")
                if not raw:
                    break
                if not raw.startswith(GZIP_MAGIC):
                    raise _Fallback("bytes after the gzip stream are not another gzip member")
                inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                continue
            raw = inflater.unconsumed_tail
            if not raw and not piece:
                break
    if not inflater.eof:
        raise _Fallback("the gzip stream is truncated")


class _StreamReader:
    """State of one streamed read: the bytes around the event array and the tables."""

    def __init__(self, flush_rows: int) -> None:
        self.tables = _BatchedTables(flush_rows)
        self.prefix = b""
        self.tail = b""
        self.form = "object"

    def read(self, chunks: Iterator[bytes]) -> None:
        remainder = self._read_prefix(chunks)
        for chunk in chunks:
            remainder = self._decode_complete_events(remainder, chunk)
        self._decode_last_events(remainder)

    def _read_prefix(self, chunks: Iterator[bytes]) -> bytes:
        """Read until the `[` that opens the event array; return the bytes after it."""
        data = b""
        for chunk in chunks:
            data += chunk
            start = first_content_offset(data)
            if start < len(data) and data[start : start + 1] not in (b"{", b"["):
                raise _Fallback("the file does not start with a JSON object or array")
            located = events_array_start(data)
            if located is not None:
                array_start, self.form = located
                self.prefix = data[:array_start]
                return data[array_start:]
            if len(data) > _MAX_PREFIX_BYTES:
                break
        raise _Fallback("no traceEvents array was found near the start of the file")

    def _decode_complete_events(self, remainder: bytes, chunk: bytes) -> bytes:
        """Decode the events before the last event boundary in `remainder` + `chunk`, and
        return the bytes after that boundary."""
        # One copy into a bytearray that starts with `[`. The byte after a cut becomes
        # `]`, so each candidate batch is decoded in place through a memoryview.
        buffer = bytearray(b"[")
        buffer += remainder
        buffer += chunk
        failed_cuts = 0
        for cut in itertools.islice(_boundaries_from_end(buffer), _MAX_CUT_TRIES):
            after_cut = buffer[cut]
            buffer[cut] = ord("]")
            try:
                decoded = self._add_events(memoryview(buffer)[: cut + 1])
            finally:
                buffer[cut] = after_cut
            if decoded:
                # The remainder starts at the `{` of the next event.
                return bytes(buffer[buffer.index(b"{", cut) :])
            failed_cuts += 1
        if failed_cuts >= _MAX_CUT_TRIES:
            raise _Fallback("no event boundary decodes")
        return bytes(buffer[1:])

    def _add_events(self, array: bytes | memoryview) -> bool:
        """Add the events of a JSON array to the tables, or return False when it does not
        decode."""
        try:
            typed = TYPED_EVENT_LIST_DECODER.decode(array)
        except _DECODE_ERRORS:
            typed = None
        if typed is not None and self.tables.add_typed(typed):
            return True
        try:
            events = EVENT_LIST_DECODER.decode(array)
        except _DECODE_ERRORS:
            return False
        self.tables.add(events)
        return True

    def _decode_last_events(self, buffer: bytes) -> None:
        """Decode the events before the `]` that closes the array, and keep the bytes
        after it as the tail of the top-level object."""
        stripped = buffer.lstrip()
        if stripped.startswith(b"]"):
            self.tail = stripped[1:]
            return
        for tries, match in enumerate(_ARRAY_END.finditer(buffer)):
            if tries >= _MAX_CUT_TRIES:
                break
            if self._add_events(b"[" + buffer[: match.start() + 1] + b"]"):
                self.tail = buffer[match.end() :]
                return
        raise _Fallback("the end of the event array was not found or does not decode")

    def metadata(self) -> dict[str, Any]:
        """Decode the top level without its events, as the whole-file reader does."""
        if self.form == "array":
            if self.tail.strip():
                raise _Fallback("bytes follow the top-level event array")
            return {}
        try:
            top_level = TOP_LEVEL_DECODER.decode(self.prefix + b"]" + self.tail)
            return {
                key: ANY_DECODER.decode(top_level[key])
                for key in METADATA_KEYS
                if key in top_level
            }
        except _DECODE_ERRORS as error:
            raise _Fallback(f"the top-level object does not decode: {error}") from None

    def trace(self, name: str, lenient: bool) -> Trace | None:
        try:
            metadata = self.metadata()
        except _Fallback as reason:
            logger.info("%s: reading the whole file instead of streaming: %s", name, reason)
            return None
        from energaizer.trace.reader import _read_warnings

        builder = self.tables.finish()
        gpu_activity, set_aside = builder.gpu_frame()
        # A streamed read is always a clean one (anything else falls back to the whole-file
        # reader), so, as there, `lenient` is True only when lenient recovery was used.
        report = ReadReport(lenient=False)
        trace = Trace(
            path=name,
            gpu_activity=gpu_activity,
            runtime=builder.runtime_frame(),
            cpu_ops=builder.cpu_frame(),
            metadata=metadata,
            report=report,
            form=self.form,
            set_aside_activity=set_aside,
            unusable_events=builder.unusable_events,
        )
        trace.warnings.extend(_read_warnings(trace, DecodedTrace([], metadata, self.form, report)))
        return trace


def _boundaries_from_end(buffer: bytearray) -> Iterator[int]:
    """Yield the offsets just after each `}` that a `,` and a `{` follow, last first."""
    end = len(buffer)
    while (brace := buffer.rfind(b"}", 0, end)) >= 0:
        if _BOUNDARY.match(buffer, brace):
            yield brace + 1
        end = brace


class _BatchedTables:
    """A TableBuilder whose appended rows are compacted into arrays every `flush_rows`
    rows, so Python numbers exist only for the rows of the current batch."""

    def __init__(self, flush_rows: int) -> None:
        self.flush_rows = flush_rows
        self.builder = TableBuilder()
        self._compacted_rows = 0

    def add(self, events: list) -> None:
        self.builder.add_all(events)
        if self.builder.buffered_rows() - self._compacted_rows >= self.flush_rows:
            self.builder.compact()
            self._compacted_rows = self.builder.buffered_rows()

    def add_typed(self, events: list) -> bool:
        """Add typed events, or return False having added nothing, as
        `TableBuilder.add_typed` does.

        Typed batches arrive as arrays, string codes and lists of shared shapes, so they
        need no compacting.
        """
        return self.builder.add_typed(events)

    def finish(self) -> TableBuilder:
        """Return the builder holding every row."""
        return self.builder
