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
        "5%", "--tolerance",
        help="Growth each field may show over the baseline: a percentage (5%) or a fraction "
        "(0.05). A bare number above 1 is rejected as ambiguous.",
    ),
    json_output: bool = JsonOption,
) -> None:
    """Compare an estimate with a budget or a baseline; exit 1 when over.

    With --baseline, every field both estimates have (energy, duration, average power,
    idle energy and the serving energies and latencies) must not grow past the tolerance.
    """
    from energaizer.budget import (
        check_baseline,
        check_budget,
        parse_tolerance,
        raise_if_failed,
        read_budget,
        read_estimate,
    )

    if (budget is None) == (baseline is None):
        raise InputError("Give exactly one of --budget FILE or --baseline FILE.")
    current = read_estimate(estimate, "estimate")
    source = f"estimate {estimate}"
    if budget is not None:
        result = check_budget(current, read_budget(budget), source=source)
        title = "Check against budget"
    else:
        allowed = parse_tolerance(tolerance)
        result = check_baseline(current, read_estimate(baseline, "baseline"), allowed,
                                source=source, baseline_source=f"baseline {baseline}")
        title = f"Check against baseline (tolerance {allowed * 100:g}%)"
    if json_output:
        _print_json({"passed": result.passed, "rows": result.rows})
    else:
        table = Table(title=title)
        for column in ("field", "value", "limit", "change", "result"):
            table.add_column(column, justify="left" if column == "field" else "right")
        for row in result.rows:
            table.add_row(row["field"], f"{row['value']:.6g}", f"{row['limit']:.6g}",
                          f"{row['change']:+.1%}", "ok" if row["ok"] else "OVER")
        _console().print(table)
    raise_if_failed(result)
