"""Run a sweep: estimate every grid item in parallel, reusing cached results.

Items are sent to workers in chunks. A chunk contains whole groups of items that share a
workload (model, phase, dtype, attention, batch and seq) where the chunk size allows, so
the worker builds each workload once and only simulates it per GPU and clock (see
`energaizer.sweep.worker`). A failed item becomes a row with its error; the other items
still finish.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from energaizer.errors import InputError
from energaizer.sweep.cache import ResultCache, calibration_digest, item_key
from energaizer.sweep.grid import SweepGrid
from energaizer.sweep.worker import estimate_chunk

logger = logging.getLogger(__name__)

EXECUTORS = ("local", "dask")
# Seconds to wait for a connection to a dask scheduler before the sweep fails.
SCHEDULER_TIMEOUT_S = 10
# Items per worker task: large enough that a chunk contains several items of each workload
# it builds, small enough that progress moves and work spreads over the workers.
MAX_CHUNK_ITEMS = 200
# Items equal in all of these keys share one workload.
WORKLOAD_KEYS = ("model", "phase", "dtype", "attention", "batch", "seq")

ProgressCallback = Callable[[int, int], None]


@dataclass
class SweepResult:
    """One row per grid item, in grid order, with counts of cached and failed items."""

    rows: list[dict[str, Any]]
    cached_items: int = 0
    failed_items: int = 0
    warnings: list[str] = field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


def run_sweep(
    grid: SweepGrid,
    *,
    executor: str = "local",
    workers: int | None = None,
    cache: ResultCache | None = None,
    scheduler_address: str | None = None,
    dask_client: Any = None,
    progress: ProgressCallback | None = None,
) -> SweepResult:
    """Estimate every item of `grid`; items found in `cache` are not estimated again.

    `executor` is "local" (a process pool of `workers` processes, default the CPU count;
    1 runs in this process) or "dask" (the dask.distributed scheduler at
    `scheduler_address`, the given `dask_client`, or a LocalCluster on this machine).
    `progress` is called with (finished items, all items).
    """
    if executor not in EXECUTORS:
        raise InputError(f"executor {executor!r} is invalid; expected local or dask.")
    items = grid.items()
    calibration_hash = calibration_digest(grid.calibration)
    keys = [item_key(item, calibration_hash) for item in items]
    rows: list[dict[str, Any] | None] = [None] * len(items)
    if cache is not None:
        for index, key in enumerate(keys):
            rows[index] = cache.get(key)
    pending = [index for index, row in enumerate(rows) if row is None]
    cached = len(items) - len(pending)
    done = cached
    if progress is not None:
        progress(done, len(items))

    workers = workers or os.cpu_count() or 1
    chunks = _chunks(pending, items, workers)
    for indexes, chunk_rows in _run_chunks(executor, workers, chunks, items, grid.calibration,
                                           scheduler_address, dask_client):
        for index, row in zip(indexes, chunk_rows):
            rows[index] = row
            if cache is not None and row.get("error") is None:
                cache.put(keys[index], row)
        done += len(indexes)
        if progress is not None:
            progress(done, len(items))

    finished = [row for row in rows if row is not None]
    failed = sum(1 for row in finished if row.get("error"))
    return SweepResult(finished, cached_items=cached, failed_items=failed)


def _chunks(indexes: list[int], items: list[dict[str, Any]], workers: int) -> list[list[int]]:
    """Split item indexes into chunks, about four per worker and at most MAX_CHUNK_ITEMS
    each, that keep the items of one workload together.

    A workload group larger than the chunk size is split into pieces of that size.
    """
    if not indexes:
        return []
    size = max(1, min(MAX_CHUNK_ITEMS, math.ceil(len(indexes) / (workers * 4))))
    groups: dict[tuple, list[int]] = {}
    for index in indexes:
        key = tuple(repr(items[index].get(name)) for name in WORKLOAD_KEYS)
        groups.setdefault(key, []).append(index)
    chunks: list[list[int]] = []
    current: list[int] = []
    for group in groups.values():
        for start in range(0, len(group), size):
            piece = group[start : start + size]
            if current and len(current) + len(piece) > size:
                chunks.append(current)
                current = []
            current.extend(piece)
    if current:
        chunks.append(current)
    return chunks


def _run_chunks(executor, workers, chunks, items, calibration, scheduler_address,
                dask_client) -> Iterator[tuple[list[int], list[dict[str, Any]]]]:
    if executor == "dask":
        yield from _run_dask(chunks, items, calibration, workers, scheduler_address, dask_client)
    elif workers == 1 or len(chunks) <= 1:
        for indexes in chunks:
            yield indexes, estimate_chunk([items[i] for i in indexes], calibration)
    else:
        yield from _run_processes(chunks, items, calibration, workers)


def _run_processes(chunks, items, calibration, workers):
    with ProcessPoolExecutor(max_workers=min(workers, len(chunks))) as pool:
        futures = {
            pool.submit(estimate_chunk, [items[i] for i in indexes], calibration): indexes
            for indexes in chunks
        }
        for future in as_completed(futures):
            yield futures[future], future.result()


def _run_dask(chunks, items, calibration, workers, scheduler_address, dask_client):
    try:
        from distributed import Client, LocalCluster
        from distributed import as_completed as dask_completed
    except ImportError:
        raise InputError(
            "--executor dask needs dask.distributed; install it with "
            "pip install 'dask[distributed]'."
        ) from None
    cluster = None
    client = dask_client
    if client is None and scheduler_address is not None:
        try:
            client = Client(scheduler_address, timeout=SCHEDULER_TIMEOUT_S)
        except (OSError, ValueError, TypeError) as error:
            raise InputError(f"Cannot connect to the dask scheduler at {scheduler_address!r}: "
                             f"{error}. Check the address (tcp://HOST:PORT) and that the "
                             "scheduler is running.") from None
    elif client is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, host="127.0.0.1",
                               dashboard_address=None)
        client = Client(cluster)
    try:
        futures = {
            client.submit(estimate_chunk, [items[i] for i in indexes], calibration,
                          pure=False): indexes
            for indexes in chunks
        }
        for future in dask_completed(list(futures)):
            yield futures[future], future.result()
    finally:
        if client is not dask_client:
            client.close()
        if cluster is not None:
            cluster.close()
