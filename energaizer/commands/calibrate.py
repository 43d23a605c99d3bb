"""`energaizer calibrate`: fit a calibration profile from measurements."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from energaizer.cli import JsonOption, _console, _print_json, reports_errors
from energaizer.errors import InputError


def register(app: typer.Typer) -> None:
    app.command()(calibrate)


@reports_errors
def calibrate(
    from_file: Optional[Path] = typer.Option(
        None, "--from", help="Fit from a recorded measurement-set CSV instead of a GPU."
    ),
    gpu: Optional[str] = typer.Option(None, "--gpu", "-g", help="GPU profile id the rows were measured on."),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Where to write the calibration profile JSON."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Fit power coefficients and time corrections, with cross-validated errors."""
    from energaizer.calibrate.offline import calibrate_from_file

    if from_file is None:
        raise InputError("Give --from FILE with a measurement set to fit.")
    result = calibrate_from_file(from_file, gpu=gpu, output=output)
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
