"""Read the bytes of a trace file, plain or gzip-compressed.

A gzip stream that ends early is not an error here: the bytes that could be
decompressed are returned with `compressed_stream_truncated` set, so the JSON layer can
report how many events were complete and, in lenient mode, use them.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

from energaizer.errors import TraceError

GZIP_MAGIC = b"\x1f\x8b"
_CHUNK_BYTES = 1 << 20


@dataclass
class TraceBytes:
    """Decompressed contents of one trace file."""

    data: bytes
    compressed: bool
    compressed_stream_truncated: bool = False


def read_trace_bytes(path: Path) -> TraceBytes:
    """Read a trace file, decompressing it when it starts with the gzip magic bytes."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise TraceError(f"{path}: file not found.", path=str(path)) from None
    except IsADirectoryError:
        raise TraceError(f"{path}: is a folder, expected a trace file.", path=str(path)) from None
    except OSError as error:
        raise TraceError(f"{path}: cannot be read: {error.strerror}.", path=str(path)) from None

    if not raw.startswith(GZIP_MAGIC):
        return TraceBytes(raw, compressed=False)
    data, truncated = gunzip(raw, path)
    if truncated and not data.strip():
        raise TraceError(f"{path}: the gzip stream ends after {len(raw)} bytes, before any "
                         "trace data; the file is truncated. Copy or record it again.",
                         path=str(path))
    return TraceBytes(data, compressed=True, compressed_stream_truncated=truncated)


def gunzip(raw: bytes, path: Path) -> tuple[bytes, bool]:
    """Decompress every gzip member in `raw`; report whether the last one was cut short."""
    pieces: list[bytes] = []
    remaining = raw
    while remaining:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            for start in range(0, len(remaining), _CHUNK_BYTES):
                pieces.append(inflater.decompress(remaining[start : start + _CHUNK_BYTES]))
                if inflater.eof:
                    break
            pieces.append(inflater.flush())
        except zlib.error as error:
            if not pieces:
                raise TraceError(
                    f"{path}: gzip data is corrupt ({error}); the file cannot be decompressed.",
                    path=str(path),
                ) from None
            return b"".join(pieces), True
        if not inflater.eof:
            return b"".join(pieces), True
        remaining = inflater.unused_data.lstrip(b"\x00")
        if remaining and not remaining.startswith(GZIP_MAGIC):
            break
    return b"".join(pieces), False
