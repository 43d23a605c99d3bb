"""`energaizer history`: record estimates and show one workload's trend across commits."""

from __future__ import annotations

import datetime
from pathlib import Path

import typer
from rich.table import Table

from energaizer.cli import JsonOption, _console, _print_json, reports_errors


def register(app: typer.Typer) -> None:
    app.command("history")(history)


@reports_errors
def history(
    workload: str | None = typer.Argument(None, help="Workload name; omit to list names."),
    record_file: Path | None = typer.Option(
        None, "--record", help="Estimate JSON to store under WORKLOAD before showing the trend."
    ),
    database: Path | None = typer.Option(
        None, "--db", help="SQLite file (default $ENERGAIZER_HISTORY or "
        "~/.local/share/energaizer/history.sqlite)."
    ),
    limit: int = typer.Option(50, "--limit", min=1, help="Most recent records to show."),
    json_output: bool = JsonOption,
) -> None:
    """Show how a workload's estimated energy changed across commits."""
    from energaizer import history as store
    from energaizer.budget import read_json
    from energaizer.errors import InputError

    if workload is None:
        names = store.workloads(database)
        if json_output:
            _print_json(names)
        else:
            _console().print("\n".join(names) or "No workloads recorded yet.", highlight=False)
        return
    if record_file is not None:
        store.record(workload, read_json(record_file, "estimate"), database,
                     source=f"estimate {record_file}")
    records = store.trend(workload, database, limit)
    if not records:
        raise InputError(f"No records for workload {workload!r}; add one with --record FILE.")
    if json_output:
        _print_json(records)
        return
    table = Table(title=f"History of {workload}")
    for column in ("recorded", "commit", "energy J", "change", "duration s"):
        table.add_column(column, justify="left" if column in ("recorded", "commit") else "right")
    for item in records:
        when = datetime.datetime.fromtimestamp(item["recorded_at"]).strftime("%Y-%m-%d %H:%M")
        change = "" if item["energy_change"] is None else f"{item['energy_change']:+.1%}"
        duration = "" if item["duration_s"] is None else f"{item['duration_s']:.6g}"
        table.add_row(when, str(item["git_commit"] or "")[:10], f"{item['energy_j']:.6g}",
                      change, duration)
    _console().print(table)
