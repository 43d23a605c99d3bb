"""The `energaizer` command line. Each command parses its options and calls one library
function; errors become a message on stderr and the exit code of their class."""

from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.text import Text

from energaizer import __version__
from energaizer.errors import EnergaizerError

app = typer.Typer(
    name="energaizer",
    help="Estimate and measure the energy, cost and carbon of GPU AI workloads.",
    no_args_is_help=True,
    add_completion=False,
)
_state = {"quiet": False}

TraceArgument = typer.Argument(
    ..., help="Profiler trace (.json or .json.gz), a folder of per-rank traces, or a tar archive of one."
)
LenientOption = typer.Option(
    False, "--lenient", help="Skip events that do not parse and read truncated traces up to their end."
)
JsonOption = typer.Option(False, "--json", help="Print one JSON object instead of tables.")


def _console() -> Console:
    return Console(quiet=_state["quiet"], soft_wrap=False)


def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn energaizer errors into a message on stderr and the error's exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except EnergaizerError as error:
            message = Text("error: ", style="red") + Text(str(error))
            Console(stderr=True, soft_wrap=True).print(message, highlight=False)
            raise typer.Exit(code=error.exit_code) from None

    return wrapper


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"energaizer {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only results and errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details to stderr."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Estimate and measure the energy, cost and carbon of GPU AI workloads."""
    _state["quiet"] = quiet
    level = logging.DEBUG if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@app.command()
@reports_errors
def analyze(
    trace: Path = TraceArgument,
    json_output: bool = JsonOption,
    lenient: bool = LenientOption,
) -> None:
    """Break a trace down by op class, step and kernel signature."""
    from energaizer.analyze.analysis import analyze_trace
    from energaizer.analyze.summary import summarize_analysis
    from energaizer.report.terminal import render_analysis
    from energaizer.trace import is_trace_folder, read_trace, read_trace_folder

    if is_trace_folder(trace):
        traces = [item.trace for item in read_trace_folder(trace, lenient=lenient)]
    else:
        traces = [read_trace(trace, lenient=lenient)]
    summaries = [summarize_analysis(analyze_trace(item)) for item in traces]
    if json_output:
        _print_json(summaries[0] if len(summaries) == 1 else {"ranks": summaries})
        return
    console = _console()
    for summary in summaries:
        render_analysis(summary, console)


@app.command()
@reports_errors
def estimate(
    trace: Optional[Path] = typer.Option(
        None, "--trace", "-t", help="Profiler trace file, folder of per-rank traces, or tar archive."
    ),
    gpu: Optional[str] = typer.Option(
        None, "--gpu", "-g", help="GPU profile id, name or YAML file; overrides the trace's GPU."
    ),
    json_output: bool = JsonOption,
    lenient: bool = LenientOption,
) -> None:
    """Estimate energy (J, Wh), duration, power and their breakdown."""
    from energaizer.estimate import estimate as run_estimate
    from energaizer.report.terminal import render_estimate

    result = run_estimate(trace=trace, gpu=gpu, lenient=lenient)
    if json_output:
        _print_json(result.to_dict())
        return
    render_estimate(result, _console())


@app.command()
@reports_errors
def profiles(json_output: bool = JsonOption) -> None:
    """List the GPU profiles that --gpu accepts."""
    from rich.table import Table

    from energaizer.hardware.profiles import list_profiles

    items = list_profiles()
    if json_output:
        _print_json([profile.to_dict() for profile in items])
        return
    table = Table(title="GPU profiles")
    for column in ("id", "name", "SMs", "boost MHz", "memory GB", "GB/s", "limit W", "idle W"):
        table.add_column(column, justify="left" if column in ("id", "name") else "right")
    for profile in items:
        table.add_row(profile.id, profile.name, str(profile.sms), f"{profile.boost_clock_mhz:.0f}",
                      f"{profile.memory_gb:g}", f"{profile.memory_bandwidth_gb_s:,.0f}",
                      f"{profile.power_limit_w:.0f}", f"{profile.idle_power_w:.0f}")
    _console().print(table)


def main() -> None:
    """Entry point of the `energaizer` console script."""
    app()


if __name__ == "__main__":
    main()
