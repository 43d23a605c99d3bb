"""Validate energaizer's model estimates against published measurements.

Usage:
    python calibration/validate_models.py [--data DIR] [--write] [--json FILE]

DIR is the shared data folder (default ../shared/data next to the repository). The script

1. converts the EnergAIzer ISPASS 2026 measurements (A100-PCIe-40GB and A10 at a locked
   900 MHz, and the A100 clock sweep) into measurement sets in a temporary folder;
2. fits each GPU leaving one model out at a time and reports time, power and energy MAPE
   of the held-out predictions, next to two baselines: every run's power predicted as
   the set's median power, and a roofline with a launch floor;
3. fits each GPU on all its rows (written to calibration/<gpu>.json with --write) and
   predicts the A100 clock sweep from the 900 MHz fit;
4. predicts the Zeus (NSDI 2023) training runs under power limits with the default
   calibration of each GPU: average power, and time relative to the highest limit.

Prints Markdown tables; --json also writes every number to FILE.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY / "calibration"))

from convert_energaizer_ispass26 import convert  # noqa: E402

from energaizer.calibrate.fit import _fit_prepared, leave_one_model_out, prepare_rows  # noqa: E402
from energaizer.calibrate.measurements import read_measurements  # noqa: E402
from energaizer.calibrate.profile import save_calibration  # noqa: E402
from energaizer.calibrate.validate import RowPrediction, predict_rows, summarize  # noqa: E402
from energaizer.hardware.profiles import load_profile  # noqa: E402
from zeus_power_limits import validate_zeus  # noqa: E402

SETS = {"a100-pcie-40gb": "a100_pcie_40gb_900mhz.csv", "a10": "a10_900mhz.csv"}
SWEEP = "a100_pcie_40gb_dvfs.csv"


def _mape(predicted, measured) -> float:
    predicted, measured = np.asarray(predicted), np.asarray(measured)
    return float(np.mean(np.abs(predicted - measured) / measured) * 100)


def median_baseline(rows) -> float:
    """Power MAPE when every run's power is predicted as the set's median power."""
    powers = np.array([row.power_w for row in rows])
    return _mape(np.full(len(powers), np.median(powers)), powers)


def fit_and_cross_validate(path: Path, gpu: str, write: bool) -> dict[str, Any]:
    profile = load_profile(gpu)
    rows = read_measurements(path)
    prepared = prepare_rows(rows, profile)
    held_out = leave_one_model_out(prepared, profile)
    summary = summarize([RowPrediction(m, t, e) for m, t, e in held_out])
    calibration = _fit_prepared(prepared, profile, f"EnergAIzer ISPASS 2026 measurements ({path.name})")
    calibration.validation = {
        "method": "leave-one-model-out",
        "summary": {k: summary[k] for k in ("rows", "time_mape", "power_mape", "energy_mape")},
        "per_model": summary["per_model"],
    }
    if write:
        save_calibration(calibration, REPOSITORY / "calibration" / f"{gpu}.json")
    return {"summary": summary, "median_power_mape": median_baseline(rows),
            "calibration": calibration}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPOSITORY.parent / "shared" / "data")
    parser.add_argument("--write", action="store_true", help="write calibration/<gpu>.json")
    parser.add_argument("--json", type=Path, help="also write all results to this JSON file")
    arguments = parser.parse_args()
    source = arguments.data / "measurements" / "energaizer_ispass26"
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        sets = Path(folder)
        convert(source, sets)
        print("| GPU | rows | time MAPE % | power MAPE % | energy MAPE % | median-power baseline % |")
        print("|---|---|---|---|---|---|")
        for gpu, name in SETS.items():
            outcome = fit_and_cross_validate(sets / name, gpu, arguments.write)
            block = outcome["summary"]
            results[gpu] = {**{k: block[k] for k in ("rows", "time_mape", "power_mape", "energy_mape")},
                            "per_model": block["per_model"],
                            "median_power_mape": outcome["median_power_mape"]}
            print(f"| {gpu} | {block['rows']} | {block['time_mape']:.1f} | {block['power_mape']:.1f} "
                  f"| {block['energy_mape']:.1f} | {outcome['median_power_mape']:.1f} |")
        sweep_rows = read_measurements(sets / SWEEP)
        calibration_path = REPOSITORY / "calibration" / "a100-pcie-40gb.json"
        sweep = summarize(predict_rows(sweep_rows, calibration_path if calibration_path.is_file() else None))
        results["a100-pcie-40gb clock sweep"] = {k: sweep[k] for k in ("rows", "time_mape", "power_mape", "energy_mape")}
        print(f"\nA100-PCIe-40GB clock sweep (510-1410 MHz) from the 900 MHz fit: {sweep['rows']} rows, "
              f"time {sweep['time_mape']:.1f}%, power {sweep['power_mape']:.1f}%, "
              f"energy {sweep['energy_mape']:.1f}% (MAPE)")
    zeus = validate_zeus(arguments.data / "measurements" / "zeus_nsdi23")
    results["zeus"] = zeus
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
