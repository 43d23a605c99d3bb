"""`energaizer sweep`: estimate every configuration of a grid and write the results."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from energaizer.cli import JsonOption, _console, _print_json, _state, reports_errors
from energaizer.errors import ItemsFailedError
from energaizer.progress import ProgressBar


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
    """Estimate the product of models, GPUs, shapes, dtypes and clocks in parallel.

    Every item that can be estimated is written even when others fail. Identical errors
    are listed once with their item count. Exits with code 1 when any item failed.
    """
    from energaizer.fileio import make_output_folder
    from energaizer.sweep import load_grid, run_sweep
    from energaizer.sweep.cache import DEFAULT_CACHE_DIR, ResultCache
    from energaizer.sweep.output import write_results

    loaded = load_grid(grid)
    # Check the output folder first, so a bad -o fails before the sweep runs.
    make_output_folder(output)
    cache = None if no_cache else ResultCache(cache_dir or DEFAULT_CACHE_DIR)
    show_progress = not _state["quiet"] and not json_output and sys.stderr.isatty()
    with ProgressBar(show_progress, len(loaded.items()), description="sweep") as progress:
        result = run_sweep(loaded, executor=executor.value, workers=workers, cache=cache,
                           scheduler_address=scheduler, progress=progress)
    paths = write_results(result, output)
    errors = [
        {"item": {k: v for k, v in row.items() if k in _ITEM_KEYS}, "error": row["error"]}
        for row in result.rows if row.get("error")
    ]
    groups = _group_errors(errors)
    summary = {
        "items": len(result.rows),
        "cached_items": result.cached_items,
        "failed_items": result.failed_items,
        "outputs": {kind: str(path) for kind, path in paths.items()},
        "errors": errors,
        "error_groups": groups,
    }
    if json_output:
        _print_json(summary)
    else:
        _print_summary(summary, output)
    if result.failed_items:
        raise ItemsFailedError(
            f"{result.failed_items} of {len(result.rows)} sweep items failed; the other "
            f"results are in {output}, and results.csv has each item's error."
        )


_ITEM_KEYS = {"model", "trace", "gpu", "batch", "seq", "dtype", "phase", "attention", "clock_mhz"}
# Distinct errors printed in the terminal; the JSON output and results.csv list them all.
MAX_PRINTED_ERROR_GROUPS = 20


def _group_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group identical error messages, in order of first appearance, with their item count
    and the first item that failed with each."""
    groups: dict[str, dict[str, Any]] = {}
    for failure in errors:
        group = groups.setdefault(failure["error"], {"error": failure["error"], "items": 0,
                                                     "first_item": failure["item"]})
        group["items"] += 1
    return list(groups.values())


def _print_summary(summary: dict[str, Any], output: Path) -> None:
    console = _console()
    console.print(
        f"{summary['items']} items ({summary['cached_items']} from cache, "
        f"{summary['failed_items']} failed); results in {output}", highlight=False,
    )
    groups = summary["error_groups"]
    for group in groups[:MAX_PRINTED_ERROR_GROUPS]:
        console.print(f"{group['items']} item(s) failed: {group['error']}", highlight=False)
        console.print(f"  first of them: {group['first_item']}", highlight=False)
    if len(groups) > MAX_PRINTED_ERROR_GROUPS:
        console.print(f"and {len(groups) - MAX_PRINTED_ERROR_GROUPS} more distinct errors; "
                      "see the error column of results.csv", highlight=False)
