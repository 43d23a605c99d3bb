"""Run a sweep: estimate every grid item in parallel, reusing cached results.

Items are sent to workers in chunks, grouped by model, phase and dtype, so each worker
process captures a model once and reuses the captured template for the rest of its
chunk. A failed item becomes a row with its error; the other items still finish.
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

from energaizer.errors import EnergaizerError, InputError
from energaizer.sweep.cache import ResultCache, calibration_digest, item_key
from energaizer.sweep.grid import SweepGrid

logger = logging.getLogger(__name__)

EXECUTORS = ("local", "dask")
# Items per worker task: large enough that task overhead is small next to a few ms per
# item, small enough that progress moves and work spreads over the workers.
MAX_CHUNK_ITEMS = 100

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


def estimate_item(item: dict[str, Any], calibration: str | None) -> dict[str, Any]:
    """Estimate one item; return its row, with `error` set instead of raising."""
    import energaizer

    row = dict(item)
    try:
        result = energaizer.estimate(**item, calibration=calibration)
    except EnergaizerError as error:
        row["error"] = f"{type(error).__name__}: {error}"
        return row
    except Exception as error:  # noqa: BLE001 - one broken item must not stop the sweep
        logger.warning("sweep item %s failed unexpectedly: %r", item, error)
        row["error"] = f"{type(error).__name__}: {error}"
        return row
    items_per_pass = item.get("batch") or max(1, len(result.steps))
    row.update(
        gpu_profile=result.gpu.profile,
        energy_j=result.energy_j,
        duration_s=result.duration_s,
        avg_power_w=result.avg_power_w,
        items_per_pass=items_per_pass,
        energy_per_item_j=result.energy_j / items_per_pass,
        time_per_item_s=result.duration_s / items_per_pass,
        error=None,
    )
    return row


def estimate_chunk(items: list[dict[str, Any]], calibration: str | None) -> list[dict[str, Any]]:
    """Estimate a chunk of items in one worker task."""
    return [estimate_item(item, calibration) for item in items]


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
    chunks = _chunks(pending, workers)
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


def _chunks(indexes: list[int], workers: int) -> list[list[int]]:
    """Split item indexes into consecutive chunks, about four per worker."""
    if not indexes:
        return []
    size = max(1, min(MAX_CHUNK_ITEMS, math.ceil(len(indexes) / (workers * 4))))
    return [indexes[start : start + size] for start in range(0, len(indexes), size)]


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
        client = Client(scheduler_address)
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
