"""Read PyTorch profiler (Kineto) traces: one file, a folder of per-rank files, or a
tar archive of such a folder."""

from __future__ import annotations

import logging
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

from energaizer.errors import TraceError
from energaizer.trace.decode import DecodedTrace, decode_trace, decode_typed_trace
from energaizer.trace.model import Trace
from energaizer.trace.source import GZIP_MAGIC, TraceBytes, gunzip, read_trace_bytes
from energaizer.trace.stream import ProgressCallback, read_large_trace
from energaizer.trace.tables import TableBuilder

logger = logging.getLogger(__name__)

TRACE_SUFFIXES = (".json", ".json.gz")
_RANK_IN_NAME = re.compile(r"(?:rank|worker)[-_]?(\d+)", re.IGNORECASE)


def read_trace(path: str | Path, lenient: bool = False,
               progress: ProgressCallback | None = None) -> Trace:
    """Read one trace file (`.json` or `.json.gz`).

    Raises TraceError for unreadable or invalid files; with `lenient`, broken events
    are skipped and a truncated file yields its complete events, both recorded in
    `Trace.report` and `Trace.warnings`. `progress` is called with (bytes of the file
    read, file size in bytes) after each chunk of a file large enough to stream, and
    otherwise once when the file is read.
    """
    path = Path(path)
    streamed = read_large_trace(path, lenient, progress)
    if streamed is not None:
        return streamed
    trace = _build_trace(read_trace_bytes(path), str(path), lenient)
    if progress is not None:
        size = path.stat().st_size
        progress(size, size)
    return trace


def _build_trace(source: TraceBytes, name: str, lenient: bool) -> Trace:
    builder = TableBuilder()
    decoded = _decode_typed(source, builder)
    if decoded is None:
        decoded = decode_trace(source.data, name, lenient=lenient)
        if source.compressed_stream_truncated:
            decoded.report.truncated = True
        builder.add_all(decoded.events)
    gpu_activity, set_aside = builder.gpu_frame()
    trace = Trace(
        path=name,
        gpu_activity=gpu_activity,
        runtime=builder.runtime_frame(),
        cpu_ops=builder.cpu_frame(),
        metadata=decoded.metadata,
        report=decoded.report,
        form=decoded.form,
        set_aside_activity=set_aside,
        unusable_events=builder.unusable_events,
    )
    trace.warnings.extend(_read_warnings(trace, decoded))
    return trace


def _decode_typed(source: TraceBytes, builder: TableBuilder) -> DecodedTrace | None:
    """Add the events of a well-formed trace to `builder` through the typed fast path.
    Returns None, having added nothing, when the file needs `decode_trace`."""
    if source.compressed_stream_truncated:
        return None
    typed = decode_typed_trace(source.data)
    if typed is None or not builder.add_typed(typed.events):
        return None
    return DecodedTrace([], typed.metadata, typed.form)


def _read_warnings(trace: Trace, decoded: DecodedTrace) -> list[str]:
    """Describe, in plain sentences, what reading had to leave out or repair."""
    report = decoded.report
    warnings = []
    if report.truncated:
        warnings.append(
            f"The trace is truncated; {len(decoded.events)} complete events were read, "
            "so totals are lower bounds."
        )
    if report.skipped_events:
        warnings.append(f"{report.skipped_events} events could not be parsed and were skipped.")
    if report.repaired_events:
        warnings.append(
            f"{report.repaired_events} events contained invalid bytes; "
            f"{report.replaced_bytes} bytes were replaced."
        )
    if trace.set_aside_activity:
        warnings.append(
            f"{trace.set_aside_activity} GPU activities had timestamps that cannot be placed "
            "on the timeline (zero, or far from the rest) and were left out."
        )
    if trace.unusable_events:
        warnings.append(
            f"{trace.unusable_events} events had a missing or invalid ts, dur, name, "
            "category or phase and were left out."
        )
    return warnings


@dataclass
class RankTrace:
    """One rank's trace within a multi-GPU job."""

    rank: int
    trace: Trace
    rank_source: str


def is_trace_folder(path: str | Path) -> bool:
    """True for a folder or a tar archive, which hold one trace per rank."""
    path = Path(path)
    return path.is_dir() or (path.is_file() and _is_tar(path))


def read_trace_folder(path: str | Path, lenient: bool = False,
                      progress: ProgressCallback | None = None) -> list[RankTrace]:
    """Read every trace of a multi-GPU job, ordered by rank.

    Ranks come from each file's `distributedInfo`, else from a `rank<N>` or
    `worker<N>` part of its name, else from the sorted file order. Two files that
    claim the same rank raise TraceError naming both. `progress` is called with
    (traces read, traces in the folder) after each trace.
    """
    path = Path(path)
    if path.is_file():
        sources: list[tuple[str, TraceBytes | Path]] = list(_tar_sources(path))
    else:
        sources = [(str(item), item) for item in _folder_files(path)]
    if not sources:
        raise TraceError(
            f"{path}: no trace files (*.json, *.json.gz) were found.", path=str(path)
        )
    traces = []
    for done, (name, source) in enumerate(sources, start=1):
        if isinstance(source, Path):
            # A file of a folder is read as `read_trace` reads it, streamed when large.
            traces.append(read_trace(source, lenient))
        else:
            traces.append(_build_trace(source, name, lenient))
        if progress is not None:
            progress(done, len(sources))
    return _assign_ranks(traces)


def _folder_files(path: Path) -> list[Path]:
    return sorted(
        item for item in path.iterdir() if item.is_file() and item.name.endswith(TRACE_SUFFIXES)
    )


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except (OSError, EOFError, tarfile.TarError):
        # A gzip stream cut short fails here before the reader can report it. It is not an
        # archive, so it is read as a trace, which reports the truncation.
        return False


def _tar_sources(path: Path) -> list[tuple[str, TraceBytes]]:
    """Read the trace members of a tar archive in memory; nothing is extracted to disk."""
    sources = []
    try:
        with tarfile.open(path) as archive:
            members = sorted(
                (m for m in archive.getmembers() if m.isfile() and m.name.endswith(TRACE_SUFFIXES)),
                key=lambda member: member.name,
            )
            for member in members:
                handle = archive.extractfile(member)
                if handle is None:
                    continue
                raw = handle.read()
                name = f"{path}:{member.name}"
                if raw.startswith(GZIP_MAGIC):
                    data, truncated = gunzip(raw, Path(name))
                    sources.append((name, TraceBytes(data, True, truncated)))
                else:
                    sources.append((name, TraceBytes(raw, False)))
    except (tarfile.TarError, EOFError, OSError) as error:
        raise TraceError(f"{path}: the tar archive cannot be read: {error}.", path=str(path)) from None
    return sources


def _assign_ranks(traces: list[Trace]) -> list[RankTrace]:
    claimed: dict[int, Trace] = {}
    for trace in traces:
        rank = trace.rank
        if rank is None:
            continue
        if rank in claimed:
            raise TraceError(
                f"Two traces claim rank {rank}: {claimed[rank].path} and {trace.path}. "
                "Remove one of them or give the files of one job only.",
                path=trace.path,
            )
        claimed[rank] = trace

    ranked = []
    taken = set(claimed)
    for index, trace in enumerate(traces):
        if trace.rank is not None:
            ranked.append(RankTrace(trace.rank, trace, "distributedInfo"))
            continue
        match = _RANK_IN_NAME.search(Path(trace.path.split(":")[-1]).name)
        rank, source = (int(match.group(1)), "file name") if match else (index, "file order")
        if rank in taken:
            rank = max(taken | {-1}) + 1
            source = "next free rank"
        taken.add(rank)
        trace.warnings.append(
            f"{trace.path} records no distributedInfo; it is treated as rank {rank} "
            f"(from its {source})."
        )
        ranked.append(RankTrace(rank, trace, source))
    return sorted(ranked, key=lambda item: item.rank)
