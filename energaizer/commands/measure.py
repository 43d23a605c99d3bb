"""`energaizer measure`: run a command and measure the energy of its GPUs."""

from __future__ import annotations

import warnings
from pathlib import Path

import typer

from energaizer.cli import JsonOption, _console, _print_json, reports_errors
from energaizer.hardware.devices import MigSplit


def register(app: typer.Typer) -> None:
    app.command(context_settings={"allow_interspersed_args": False})(measure)


@reports_errors
def measure(
    command: list[str] = typer.Argument(
        ..., help="The command to run and measure, after `--`.", show_default=False
    ),
    gpus: str | None = typer.Option(
        None, "--gpus",
        help="Comma-separated CUDA ordinals, GPU UUIDs or MIG UUIDs (default: every GPU "
        "visible to CUDA).",
    ),
    interval_ms: float = typer.Option(
        100.0, "--interval-ms", min=1.0, help="Sampling interval in milliseconds."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for the power timeline CSV and the result JSON."
    ),
    simulate: bool = typer.Option(
        False, "--simulate", help="Measure a simulated GPU instead of NVML; results are "
        "labelled simulated."
    ),
    mig_split: MigSplit = typer.Option(
        MigSplit.none, "--mig-split",
        help="For a MIG slice: none reports the parent GPU's whole energy, marked shared; "
        "equal divides it evenly among the parent's slices.",
    ),
    trace: bool = typer.Option(
        False, "--trace",
        help="Treat COMMAND as a Python script and its arguments, run it under the PyTorch "
        "profiler, and write the trace with measured power as a counter track to --out.",
    ),
    json_output: bool = JsonOption,
) -> None:
    """Run COMMAND and report energy (J), duration, average and peak power per GPU.

    The exit code is the command's own.
    """
    from energaizer.fileio import make_output_folder
    from energaizer.measure.meter import measure_command

    # Check --out before the command runs, so a bad folder cannot lose a measurement.
    if out is not None:
        make_output_folder(out, "--out")
    requests = [item.strip() for item in gpus.split(",") if item.strip()] if gpus else None
    if trace:
        _measure_profiled(command, requests, interval_ms, out, simulate, mig_split, json_output)
        return
    # The result carries every measurement warning and they are printed below, so
    # Python's own warning output would only repeat them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = measure_command(command, gpus=requests, interval_s=interval_ms / 1e3,
                                 out=out, simulate=simulate, mig_split=mig_split)
    if json_output:
        _print_json(result.to_dict())
    else:
        _render(result)
    raise typer.Exit(code=result.exit_code or 0)


def _measure_profiled(command, requests, interval_ms, out, simulate, mig_split,
                      json_output) -> None:
    from energaizer.errors import InputError
    from energaizer.measure.meter import Meter
    from energaizer.measure.profiled import run_profiled

    if out is None:
        raise InputError("--trace writes a trace file, so it needs --out DIR.")
    meter = Meter(requests, interval_s=interval_ms / 1e3, out=out, simulate=simulate,
                  mig_split=mig_split)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result, trace_path, exit_code = run_profiled(command[0], command[1:], meter, out)
    if json_output:
        _print_json({**result.to_dict(), "trace": str(trace_path), "exit_code": exit_code})
    else:
        _render(result)
        _console().print(f"trace with measured power: {trace_path}", highlight=False)
    raise typer.Exit(code=exit_code)


def _render(result) -> None:
    console = _console()
    console.print(f"{result.label} run of {result.duration_s:.2f} s, exit code {result.exit_code}",
                  highlight=False)
    for gpu in result.gpus:
        energy = "unavailable" if gpu.energy_j is None else f"{gpu.energy_j:.1f} J"
        average = "-" if gpu.avg_power_w is None else f"{gpu.avg_power_w:.1f} W"
        peak = "-" if gpu.peak_power_w is None else f"{gpu.peak_power_w:.1f} W"
        shared = " (shared by MIG slices)" if gpu.shared else ""
        console.print(
            f"GPU {gpu.index} {gpu.name}{shared}: {energy} by {gpu.method}, average {average}, "
            f"peak {peak}, coverage {100 * gpu.coverage:.0f}%", highlight=False)
    for warning in result.warnings:
        console.print(f"warning: {warning}", highlight=False)
    if result.timeline_csv:
        console.print(f"power timeline: {result.timeline_csv}", highlight=False)
