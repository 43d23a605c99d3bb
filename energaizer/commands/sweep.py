"""`energaizer sweep`: estimate every configuration of a grid and write the results."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path

import typer

from energaizer.cli import JsonOption, _console, _print_json, _state, reports_errors


class Executor(str, Enum):
    local = "local"
    dask = "dask"


def register(app: typer.Typer) -> None:
    app.command()(sweep)


@reports_errors
def sweep(
    grid: Path = typer.Argument(..., help="Sweep grid YAML (models or traces, GPUs, shapes, clocks)."),
    output: Path = typer.Option(
        Path("sweep-results"), "--output", "-o",
        help="Folder for results.parquet, results.csv and summary.png.",
    ),
    executor: Executor = typer.Option(
        Executor.local, "--executor",
        help="local: a process pool on this machine; dask: a dask.distributed cluster.",
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Worker processes (default: the CPU count)."
    ),
    scheduler: str | None = typer.Option(
        None, "--scheduler",
        help="dask scheduler address (tcp://HOST:PORT); default: a local cluster.",
    ),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="Result cache folder (default: ~/.cache/energaizer/sweep)."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Estimate every item again."),
    json_output: bool = JsonOption,
) -> None:
    """Estimate the product of models, GPUs, shapes, dtypes and clocks in parallel."""
    from energaizer.sweep import load_grid, run_sweep
    from energaizer.sweep.cache import DEFAULT_CACHE_DIR, ResultCache
    from energaizer.sweep.output import write_results

    loaded = load_grid(grid)
    cache = None if no_cache else ResultCache(cache_dir or DEFAULT_CACHE_DIR)
    show_progress = not _state["quiet"] and not json_output and sys.stderr.isatty()
    with _ProgressBar(show_progress, len(loaded.items())) as progress:
        result = run_sweep(loaded, executor=executor.value, workers=workers, cache=cache,
                           scheduler_address=scheduler, progress=progress)
    paths = write_results(result, output)
    summary = {
        "items": len(result.rows),
        "cached_items": result.cached_items,
        "failed_items": result.failed_items,
        "outputs": {kind: str(path) for kind, path in paths.items()},
        "errors": [
            {"item": {k: v for k, v in row.items() if k in _ITEM_KEYS}, "error": row["error"]}
            for row in result.rows if row.get("error")
        ],
    }
    if json_output:
        _print_json(summary)
        return
    console = _console()
    console.print(
        f"{summary['items']} items ({result.cached_items} from cache, "
        f"{result.failed_items} failed); results in {output}", highlight=False,
    )
    for failure in summary["errors"][:20]:
        console.print(f"failed: {failure['item']}: {failure['error']}", highlight=False)


_ITEM_KEYS = {"model", "trace", "gpu", "batch", "seq", "dtype", "phase", "attention", "clock_mhz"}


class _ProgressBar:
    """A rich progress bar on stderr, or a no-op callback when it is turned off."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled
        self.total = total
        self._progress = None
        self._task = None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import Progress

        self._progress = Progress(console=Console(stderr=True), transient=True)
        self._progress.start()
        self._task = self._progress.add_task("sweep", total=self.total)
        return self._update

    def _update(self, done: int, total: int) -> None:
        self._progress.update(self._task, completed=done, total=total)

    def __exit__(self, *exc_info) -> None:
        if self._progress is not None:
            self._progress.stop()
