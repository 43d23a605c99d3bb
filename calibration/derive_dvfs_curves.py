"""Fit the voltage and idle-power curves of energaizer's DVFS model to measured tables.

Source: the idle power (W) and supply voltage (mV) per locked SM clock published with the
EnergAIzer paper (ISPASS 2026, MIT licence). Only the fitted parameters are written to
`profiles/dvfs/<gpu>.yaml`; the tables themselves stay outside the repository.

Usage: python calibration/derive_dvfs_curves.py DVFS_DIR [PROFILES_DVFS_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import yaml
from scipy.optimize import nnls

from energaizer.power.dvfs import DVFS_SCHEMA, DEFAULT_VOLTAGE_KNEE, DEFAULT_VOLTAGE_MIN

GPUS = ("a100-pcie-40gb", "a100-sxm4-80gb", "h100-sxm5-80gb")
# Clocks below this share of the maximum are left out: the H100 table reads 117 W at
# 345 MHz against 72 W at 525 MHz, which is a power state change, not the curve.
MIN_CLOCK_SHARE = 0.2


def _table(path: Path) -> tuple[np.ndarray, np.ndarray]:
    values = json.loads(path.read_text())
    points = sorted((float(k), v) for k, v in values.items() if v is not None)
    return np.array([p[0] for p in points]), np.array([float(p[1]) for p in points])


def fit_voltage(clocks: np.ndarray, millivolts: np.ndarray) -> tuple[float, float, float]:
    """Return (min_relative, knee_relative, rms error in relative units)."""
    x = clocks / clocks.max()
    v = millivolts / millivolts[np.argmax(clocks)]
    best = (DEFAULT_VOLTAGE_MIN, DEFAULT_VOLTAGE_KNEE, np.inf)
    v_min = float(v.min())
    for knee in np.linspace(0.3, 0.95, 131):
        model = np.maximum(v_min, v_min + (1 - v_min) * (x - knee) / (1 - knee))
        error = float(np.sqrt(np.mean((model - v) ** 2)))
        if error < best[2]:
            best = (v_min, float(knee), error)
    return best


def fit_idle(clocks, watts, v_min, knee) -> tuple[list[float], float]:
    x = clocks / clocks.max()
    voltage = np.maximum(v_min, v_min + (1 - v_min) * (x - knee) / (1 - knee))
    design = np.column_stack([np.ones_like(x), voltage**2 * x, voltage**3])
    coefficients, _ = nnls(design, watts)
    error = float(np.sqrt(np.mean((design @ coefficients - watts) ** 2)))
    return [float(c) for c in coefficients], error


def derive(dvfs_dir: Path, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for gpu in GPUS:
        clocks, watts = _table(dvfs_dir / f"{gpu}_idle_power_w.json")
        keep = clocks >= MIN_CLOCK_SHARE * clocks.max()
        clocks, watts = clocks[keep], watts[keep]
        volt_clocks, millivolts = _table(dvfs_dir / f"{gpu}_supply_voltage_mv.json")
        if len(volt_clocks) >= 5:
            v_min, knee, v_error = fit_voltage(volt_clocks, millivolts)
            voltage_note = f"fitted to the supply-voltage table (rms error {v_error:.3f})"
        else:
            v_min, knee, v_error = DEFAULT_VOLTAGE_MIN, DEFAULT_VOLTAGE_KNEE, None
            voltage_note = "default shape: the published table has no voltage readings"
        (constant, clock_tree, leakage), idle_error = fit_idle(clocks, watts, v_min, knee)
        document = {
            "schema": DVFS_SCHEMA,
            "gpu": gpu,
            "max_clock_mhz": float(clocks.max()),
            "voltage": {"min_relative": round(v_min, 4), "knee_relative": round(knee, 4)},
            "idle_power": {"constant_w": round(constant, 2), "clock_tree_w": round(clock_tree, 2),
                           "leakage_w": round(leakage, 2)},
            "idle_fit_rms_w": round(idle_error, 2),
            "source": (
                "Fitted by calibration/derive_dvfs_curves.py to the idle power and supply "
                "voltage per locked SM clock published with EnergAIzer (Lee et al., ISPASS "
                f"2026, MIT licence); voltage: {voltage_note}."
            ),
        }
        target = out_dir / f"{gpu}.yaml"
        target.write_text(yaml.safe_dump(document, sort_keys=False))
        print(target, document["voltage"], document["idle_power"], f"rms {idle_error:.2f} W")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__)
        raise SystemExit(2)
    output = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).resolve().parents[1] / "profiles" / "dvfs"
    derive(Path(sys.argv[1]), output)
