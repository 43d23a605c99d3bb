"""Read Kineto traces and list the GPU kernels they contain, for the classifier tests.

Each distinct (kernel name, launching CPU op, category) gets its total duration and count.
The CPU op is found through the launch: the kernel's `correlation` matches a CUDA runtime
or driver event, whose `External id` matches one or more CPU ops. Of those, the innermost
op (the shortest one on the launching thread that spans the launch) is taken. When the
External id leads nowhere, the innermost op spanning the launch in time is taken instead.

Run `PYTHONPATH=. python tests/analyze/kernel_names.py` from the repository root to print,
per shared trace, the share of kernel time classified `other` and the top `other` names.
"""

from __future__ import annotations

import gzip
import json
import os
import tarfile
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from energaizer.analyze.classify import classify_kernel
from energaizer.analyze.opclass import OpClass

# Trace category -> normalized category. Older Kineto versions write "Kernel", "Memcpy"
# and "Memset", newer ones "kernel", "gpu_memcpy" and "gpu_memset".
GPU_CATEGORIES = {
    "kernel": "kernel",
    "Kernel": "kernel",
    "gpu_memcpy": "memcpy",
    "Memcpy": "memcpy",
    "gpu_memset": "memset",
    "Memset": "memset",
}
RUNTIME_CATEGORIES = frozenset({"cuda_runtime", "cuda_driver", "Runtime"})
CPU_OP_CATEGORIES = frozenset({"cpu_op", "Operator"})

SHARED_DATA_ENV = "ENERGAIZER_SHARED_DATA"


@dataclass(frozen=True)
class KernelTotal:
    """Total GPU time of one kernel name launched by one CPU op."""

    name: str
    category: str
    cpu_op: str | None
    total_us: float
    count: int


@dataclass(frozen=True)
class TraceKernels:
    """The kernel totals of one trace file, or of one member of a trace archive."""

    label: str
    is_nvidia: bool
    kernels: tuple[KernelTotal, ...]


class _CpuOp(NamedTuple):
    name: str
    thread: tuple[object, object]
    start_us: float
    end_us: float


@dataclass
class _TraceIndex:
    """The events of one trace that the kernel-to-CPU-op link needs, grouped for lookup."""

    gpu_events: list[tuple[dict, str]] = field(default_factory=list)
    launches: dict[object, dict] = field(default_factory=dict)
    cpu_ops_by_external_id: dict[object, list[_CpuOp]] = field(
        default_factory=lambda: defaultdict(list)
    )
    cpu_ops_by_thread: dict[tuple[object, object], list[_CpuOp]] = field(
        default_factory=lambda: defaultdict(list)
    )


def shared_data_dir() -> Path:
    """Return the shared data folder: $ENERGAIZER_SHARED_DATA, else ../shared/data."""
    override = os.environ.get(SHARED_DATA_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def trace_paths(traces_dir: Path) -> list[Path]:
    """Return the trace files (.json, .json.gz and .tar.gz archives) under `traces_dir`."""
    suffixes = (".json", ".json.gz", ".tar.gz")
    return sorted(p for p in traces_dir.rglob("*") if p.is_file() and p.name.endswith(suffixes))


def load_trace_documents(path: Path) -> list[tuple[str, dict]]:
    """Parse a trace file and return (label, document) pairs.

    A .tar.gz archive yields one pair per JSON member. The label is the file name, with
    `:member` appended for archive members.
    """
    if path.name.endswith(".tar.gz"):
        return _load_archive_documents(path)
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    return [(path.name, json.loads(data))]


def _load_archive_documents(path: Path) -> list[tuple[str, dict]]:
    documents = []
    with tarfile.open(path, "r:gz") as archive:
        for member in sorted(archive.getmembers(), key=lambda m: m.name):
            if not member.isfile() or not member.name.endswith((".json", ".json.gz")):
                continue
            data = archive.extractfile(member).read()
            if member.name.endswith(".gz"):
                data = gzip.decompress(data)
            documents.append((f"{path.name}:{member.name}", json.loads(data)))
    return documents


def trace_events(document: dict | list) -> list[dict]:
    """Return the event list of a Chrome trace document (an object or a bare array)."""
    if isinstance(document, list):
        return document
    return document.get("traceEvents", [])


def is_nvidia_trace(document: dict | list) -> bool:
    """Return False when `deviceProperties` names an AMD GPU, True otherwise.

    NOTE: a trace without `deviceProperties` counts as NVIDIA, because no other field in it
    names the GPU vendor.
    """
    if isinstance(document, list):
        return True
    for device in document.get("deviceProperties", []):
        name = str(device.get("name", ""))
        if "AMD" in name or "Radeon" in name or "Instinct" in name:
            return False
    return True


def _external_id(args: dict) -> object:
    if "External id" in args:
        return args["External id"]
    return args.get("external id")


def _index_trace(events: list[dict]) -> _TraceIndex:
    """Sort the complete ("X") events into GPU events, launches and CPU ops in one pass."""
    index = _TraceIndex()
    for event in events:
        if event.get("ph") != "X":
            continue
        category = event.get("cat")
        args = event.get("args") or {}
        if category in GPU_CATEGORIES:
            index.gpu_events.append((event, GPU_CATEGORIES[category]))
        elif category in RUNTIME_CATEGORIES and "correlation" in args:
            index.launches[args["correlation"]] = event
        elif category in CPU_OP_CATEGORIES:
            start = float(event.get("ts", 0.0))
            thread = (event.get("pid"), event.get("tid"))
            end = start + float(event.get("dur", 0.0))
            op = _CpuOp(event.get("name", ""), thread, start, end)
            index.cpu_ops_by_thread[thread].append(op)
            external_id = _external_id(args)
            if external_id is not None:
                index.cpu_ops_by_external_id[external_id].append(op)
    return index


def _innermost_ops_by_time(index: _TraceIndex) -> dict[object, str]:
    """Map each launch's correlation id to the innermost CPU op that spans it on its thread.

    The sweep visits ops and launches per thread in time order and keeps a stack of the
    ops still open. An op starting at the same time as a launch sorts first, and of two
    ops starting together the longer one (the parent) sorts first.
    """
    points_by_thread = defaultdict(list)
    for thread, ops in index.cpu_ops_by_thread.items():
        points_by_thread[thread] = [(op.start_us, 0, op.start_us - op.end_us, op) for op in ops]
    for correlation, launch in index.launches.items():
        thread = (launch.get("pid"), launch.get("tid"))
        points_by_thread[thread].append((float(launch.get("ts", 0.0)), 1, 0.0, correlation))
    innermost = {}
    for points in points_by_thread.values():
        points.sort(key=lambda point: point[:3])
        open_ops: list[_CpuOp] = []
        for ts, kind, _, item in points:
            while open_ops and open_ops[-1].end_us < ts:
                open_ops.pop()
            if kind == 0:
                open_ops.append(item)
            elif open_ops:
                innermost[item] = open_ops[-1].name
    return innermost


def _pick_by_external_id(candidates: list[_CpuOp], launch: dict) -> str | None:
    """Return the innermost candidate op that spans the launch on the launching thread."""
    thread = (launch.get("pid"), launch.get("tid"))
    launch_ts = float(launch.get("ts", 0.0))
    spanning = [
        op for op in candidates if op.thread == thread and op.start_us <= launch_ts <= op.end_us
    ]
    if not spanning:
        return None
    return min(spanning, key=lambda op: op.end_us - op.start_us).name


def _launching_cpu_op(
    kernel_args: dict, index: _TraceIndex, ops_by_time: dict[object, str]
) -> str | None:
    """Return the CPU op that launched a kernel, or None when no link is found.

    The External id link is tried first. Some traces carry the correlation id in the
    runtime event's External id, so the innermost op spanning the launch in time is the
    fallback. Without a launch event, the shortest op with the kernel's External id wins.
    """
    correlation = kernel_args.get("correlation")
    launch = index.launches.get(correlation)
    external_id = _external_id(launch.get("args") or {}) if launch else None
    if external_id is None:
        external_id = _external_id(kernel_args)
    candidates = index.cpu_ops_by_external_id.get(external_id, [])
    if launch is not None:
        name = _pick_by_external_id(candidates, launch) or ops_by_time.get(correlation)
        if name is not None:
            return name
    if candidates:
        return min(candidates, key=lambda op: op.end_us - op.start_us).name
    return None


def kernel_totals(document: dict | list) -> tuple[KernelTotal, ...]:
    """Sum the duration of each (name, CPU op, category) over the trace's GPU events."""
    index = _index_trace(trace_events(document))
    ops_by_time = _innermost_ops_by_time(index)
    totals: dict[tuple[str, str, str | None], list[float]] = {}
    for event, category in index.gpu_events:
        cpu_op = _launching_cpu_op(event.get("args") or {}, index, ops_by_time)
        entry = totals.setdefault((event.get("name", ""), category, cpu_op), [0.0, 0])
        entry[0] += float(event.get("dur", 0.0))
        entry[1] += 1
    return tuple(
        KernelTotal(name, category, cpu_op, total_us, int(count))
        for (name, category, cpu_op), (total_us, count) in totals.items()
    )


def _read_trace_file(path: Path) -> list[TraceKernels]:
    traces = []
    for label, document in load_trace_documents(path):
        relative_label = f"{path.parent.name}/{label}"
        kernels = kernel_totals(document)
        traces.append(TraceKernels(relative_label, is_nvidia_trace(document), kernels))
    return traces


@lru_cache(maxsize=None)
def collect_trace_kernels(traces_dir: Path) -> tuple[TraceKernels, ...]:
    """Read every trace under `traces_dir` and return the kernel totals, sorted by label.

    Parsing all shared traces takes seconds, so files are read in parallel worker
    processes and the result is cached per folder.
    """
    # Largest files first, so that no worker starts a big file when the others are done.
    paths = sorted(trace_paths(traces_dir), key=lambda path: path.stat().st_size, reverse=True)
    if not paths:
        return ()
    with ProcessPoolExecutor(max_workers=min(len(paths), os.cpu_count() or 1)) as pool:
        per_file = list(pool.map(_read_trace_file, paths))
    traces = [trace for file_traces in per_file for trace in file_traces]
    return tuple(sorted(traces, key=lambda trace: trace.label))


def kernel_time_us(kernels: tuple[KernelTotal, ...]) -> float:
    """Return the summed duration of the kernels (category "kernel") in microseconds."""
    return sum(kernel.total_us for kernel in kernels if kernel.category == "kernel")


def other_share(kernels: tuple[KernelTotal, ...]) -> float:
    """Return the fraction of kernel time (category "kernel") that classifies as `other`.

    Returns 0.0 for a trace without kernel time.
    """
    kernel_time = 0.0
    other_time = 0.0
    for kernel in kernels:
        if kernel.category != "kernel":
            continue
        kernel_time += kernel.total_us
        if classify_kernel(kernel.name, kernel.cpu_op, kernel.category) is OpClass.OTHER:
            other_time += kernel.total_us
    if kernel_time == 0.0:
        return 0.0
    return other_time / kernel_time


def top_other_kernels(kernels: tuple[KernelTotal, ...], limit: int = 5) -> list[KernelTotal]:
    """Return the kernels classified `other` with the largest total time, largest first."""
    others = [
        kernel
        for kernel in kernels
        if classify_kernel(kernel.name, kernel.cpu_op, kernel.category) is OpClass.OTHER
    ]
    return sorted(others, key=lambda kernel: kernel.total_us, reverse=True)[:limit]


def print_other_report(traces_dir: Path) -> None:
    """Print each trace's `other` share of kernel time and its top `other` kernels."""
    for trace in collect_trace_kernels(traces_dir):
        vendor = "NVIDIA" if trace.is_nvidia else "not NVIDIA"
        share = other_share(trace.kernels)
        total_us = kernel_time_us(trace.kernels)
        print(f"{share:7.3%} of {total_us:12.1f} us  {trace.label}  ({vendor})")
        for kernel in top_other_kernels(trace.kernels):
            name = kernel.name[:100]
            print(f"           {kernel.total_us:10.1f} us  {kernel.cpu_op}  {name}")


if __name__ == "__main__":
    print_other_report(shared_data_dir() / "traces")
