"""`energaizer calibrate`: fit a calibration profile from measurements or on a GPU."""

from __future__ import annotations

from pathlib import Path

import typer

from energaizer.cli import JsonOption, _console, _print_json, progress_enabled, reports_errors
from energaizer.errors import InputError
from energaizer.fileio import check_output_file
from energaizer.progress import ProgressBar


def register(app: typer.Typer) -> None:
    app.command()(calibrate)


@reports_errors
def calibrate(
    from_file: Path | None = typer.Option(
        None, "--from", help="Fit from a recorded measurement-set CSV instead of a GPU."
    ),
    device: str | None = typer.Option(
        None, "--device", help="Run the microbenchmarks on this GPU: a CUDA ordinal or UUID."
    ),
    simulate: bool = typer.Option(
        False, "--simulate", help="Run the microbenchmarks on a simulated GPU; the profile "
        "is labelled simulated."
    ),
    gpu: str | None = typer.Option(
        None, "--gpu", "-g",
        help="GPU profile id the rows were measured on (with --device: instead of the name "
        "NVML reports).",
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Where to write the calibration profile JSON."
    ),
    budget_s: float = typer.Option(
        300.0, "--budget-s", min=10.0,
        help="Time budget in seconds for the microbenchmarks; the plan shrinks to fit it.",
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue a killed run from its points file (output name "
        "with .points.jsonl)."
    ),
    lock_clocks_mhz: int | None = typer.Option(
        None, "--lock-clocks", min=1, metavar="MHZ",
        help="Lock the SM clock to MHZ during the run and restore it after; needs root.",
    ),
    json_output: bool = JsonOption,
) -> None:
    """Fit power coefficients and time corrections, with validation errors."""
    sources = [from_file is not None, device is not None, simulate]
    if sum(sources) != 1:
        raise InputError("Give exactly one of --from FILE, --device N or --simulate.")
    if output is not None:
        # Checked before the fit or the microbenchmarks, so their work is not lost.
        check_output_file(output)
    if from_file is not None:
        _calibrate_from(from_file, gpu, output, json_output)
        return
    from energaizer.calibrate.device import calibrate_on_device, calibrate_simulated

    if simulate and lock_clocks_mhz is not None:
        raise InputError("--lock-clocks applies to --device only.")
    with ProgressBar(progress_enabled() and not json_output, description="calibration points",
                     finished_description="fitting") as progress:
        if simulate:
            result = calibrate_simulated(gpu, output, budget_s=budget_s, resume=resume,
                                         progress=progress)
        else:
            result = calibrate_on_device(device, gpu, output, budget_s=budget_s,
                                         resume=resume, lock_clocks_mhz=lock_clocks_mhz,
                                         progress=progress)
    if json_output:
        _print_json(result)
        return
    label = "simulated " if result["simulated"] else ""
    validation = result["validation"]
    console = _console()
    console.print(f"Calibration for {label}{result['gpu']} written to {result['output']} "
                  f"from {result['points']} points ({result['points_file']})", highlight=False)
    console.print(
        f"Held-out errors over {validation['rows']} points: time {validation['time_mape']:.1f}%, "
        f"power {validation['power_mape']:.1f}%, energy {validation['energy_mape']:.1f}% (MAPE)"
    )


def _calibrate_from(from_file: Path, gpu: str | None, output: Path | None,
                    json_output: bool) -> None:
    from energaizer.calibrate.offline import calibrate_from_file

    with ProgressBar(progress_enabled() and not json_output, description="fitting",
                     unit="items") as progress:
        result = calibrate_from_file(from_file, gpu=gpu, output=output, progress=progress)
    if json_output:
        _print_json(result)
        return
    console = _console()
    console.print(f"Calibration for {result['gpu']} written to {result['output']}", highlight=False)
    validation = result["validation"]
    console.print(
        f"Leave-one-model-out errors over {validation['rows']} rows: time "
        f"{validation['time_mape']:.1f}%, power {validation['power_mape']:.1f}%, energy "
        f"{validation['energy_mape']:.1f}% (MAPE)"
    )
