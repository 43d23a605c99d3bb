"""`energaizer report`: cost, energy and carbon report of an LLM feature."""

from __future__ import annotations

from pathlib import Path

import typer

from energaizer.cli import JsonOption, _console, _print_json, reports_errors


def register(app: typer.Typer) -> None:
    app.command("report")(report)


@reports_errors
def report(
    feature: Path = typer.Argument(..., help="Feature spec YAML (serving setup, traffic, prices, grid)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to write the report files into."),
    json_output: bool = JsonOption,
) -> None:
    """Write report.md, report.html, report.csv, report.json and PNG plots for a feature."""
    from energaizer.costing.feature import load_feature_spec
    from energaizer.report.cost import write_cost_report

    paths = write_cost_report(load_feature_spec(feature), output)
    if json_output:
        _print_json({name: str(path) for name, path in paths.items()})
        return
    console = _console()
    for path in paths.values():
        console.print(f"wrote {path}", highlight=False)
