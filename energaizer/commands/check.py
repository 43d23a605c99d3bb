"""`energaizer check`: fail (exit code 1) when an estimate exceeds a budget or grows past
a baseline."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from energaizer.cli import JsonOption, _console, _print_json, reports_errors
from energaizer.errors import InputError


def register(app: typer.Typer) -> None:
    app.command("check")(check)


@reports_errors
def check(
    estimate: Path = typer.Argument(..., help="Estimate JSON written by estimate --json."),
    budget: Path | None = typer.Option(
        None, "--budget", help="Budget YAML mapping fields to maximums, e.g. energy_j: 50."
    ),
    baseline: Path | None = typer.Option(None, "--baseline", help="Earlier estimate JSON."),
    tolerance: str = typer.Option(
        "5%", "--tolerance", help="Growth allowed over the baseline, as a percentage."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Compare an estimate with a budget or a baseline; exit 1 when over."""
    from energaizer.budget import (
        check_baseline,
        check_budget,
        parse_tolerance,
        raise_if_failed,
        read_budget,
        read_json,
    )

    if (budget is None) == (baseline is None):
        raise InputError("Give exactly one of --budget FILE or --baseline FILE.")
    current = read_json(estimate, "estimate")
    if budget is not None:
        result = check_budget(current, read_budget(budget))
    else:
        result = check_baseline(current, read_json(baseline, "baseline"),
                                parse_tolerance(tolerance))
    if json_output:
        _print_json({"passed": result.passed, "rows": result.rows})
    else:
        table = Table(title="Check against " + ("budget" if budget else "baseline"))
        for column in ("field", "value", "limit", "change", "result"):
            table.add_column(column, justify="left" if column == "field" else "right")
        for row in result.rows:
            table.add_row(row["field"], f"{row['value']:.6g}", f"{row['limit']:.6g}",
                          f"{row['change']:+.1%}", "ok" if row["ok"] else "OVER")
        _console().print(table)
    raise_if_failed(result)
