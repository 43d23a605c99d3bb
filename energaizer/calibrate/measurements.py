"""Measurement sets: measured runs of model passes, one row per run, as CSV.

Columns: model, dtype, batch, seq, phase (prefill, decode, train, forward), attention
(default or eager), gpu (profile id), clock_mhz (empty when not locked), time_ms and
energy_j (both per pass). Extra columns are kept and ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from energaizer.errors import InputError

REQUIRED_COLUMNS = (
    "model", "dtype", "batch", "seq", "phase", "attention", "gpu", "clock_mhz", "time_ms",
    "energy_j",
)
PHASES = ("prefill", "decode", "train", "forward")
ATTENTIONS = ("default", "eager")
DTYPES = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class Measurement:
    """One measured run: a model pass on a GPU, with its time and energy per pass."""

    model: str
    dtype: str
    batch: int
    seq: int | None
    phase: str
    attention: str
    gpu: str
    clock_mhz: float | None
    time_ms: float
    energy_j: float

    @property
    def time_s(self) -> float:
        return self.time_ms / 1e3

    @property
    def power_w(self) -> float:
        """Average power over the pass: energy over time."""
        return self.energy_j / self.time_s

    @property
    def key(self) -> tuple:
        """What identifies the workload, independent of GPU and clock."""
        return (self.model, self.dtype, self.batch, self.seq, self.phase, self.attention)


def read_measurements(path: str | Path) -> list[Measurement]:
    """Read and check a measurement-set CSV; raise InputError naming the row and column."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a measurement-set CSV file, such as one "
                         "written by calibration/convert_energaizer_ispass26.py.")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise InputError(f"{path}: measurement set not found.") from None
    except OSError as error:
        raise InputError(f"Cannot read measurement set {path}: {error.strerror}.") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not a readable CSV file: {error}.") from None
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: missing columns {', '.join(missing)}. A measurement set needs "
            f"{', '.join(REQUIRED_COLUMNS)}."
        )
    if frame.empty:
        raise InputError(f"{path}: the measurement set has no rows.")
    return [_row(path, index + 2, row) for index, row in enumerate(frame.to_dict("records"))]


def write_measurements(rows: list[Measurement], path: str | Path) -> None:
    """Write rows as a measurement-set CSV."""
    records = [
        {
            "model": row.model, "dtype": row.dtype, "batch": row.batch,
            "seq": "" if row.seq is None else row.seq, "phase": row.phase,
            "attention": row.attention, "gpu": row.gpu,
            "clock_mhz": "" if row.clock_mhz is None else f"{row.clock_mhz:g}",
            "time_ms": repr(row.time_ms), "energy_j": repr(row.energy_j),
        }
        for row in rows
    ]
    pd.DataFrame(records, columns=list(REQUIRED_COLUMNS)).to_csv(path, index=False)


def _row(path: Path, line: int, record: dict[str, str]) -> Measurement:
    where = f"{path}, line {line}"
    phase = record["phase"].strip()
    attention = record["attention"].strip() or "default"
    dtype = record["dtype"].strip()
    if phase not in PHASES:
        raise InputError(f"{where}: phase {phase!r} is invalid; expected one of {', '.join(PHASES)}.")
    if attention not in ATTENTIONS:
        raise InputError(f"{where}: attention {attention!r} is invalid; expected default or eager.")
    if dtype not in DTYPES:
        raise InputError(f"{where}: dtype {dtype!r} is invalid; expected one of {', '.join(DTYPES)}.")
    if not record["model"].strip() or not record["gpu"].strip():
        raise InputError(f"{where}: model and gpu must not be empty.")
    return Measurement(
        model=record["model"].strip(),
        dtype=dtype,
        batch=_positive_int(record["batch"], "batch", where),
        seq=None if not record["seq"].strip() else _positive_int(record["seq"], "seq", where),
        phase=phase,
        attention=attention,
        gpu=record["gpu"].strip(),
        clock_mhz=None if not record["clock_mhz"].strip() else _positive(record["clock_mhz"], "clock_mhz", where),
        time_ms=_positive(record["time_ms"], "time_ms", where),
        energy_j=_positive(record["energy_j"], "energy_j", where),
    )


def _positive(text: str, column: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{where}: {column} {text!r} is not a number.") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{where}: {column} must be positive, got {text!r}.")
    return value


def _positive_int(text: str, column: str, where: str) -> int:
    value = _positive(text, column, where)
    if not value.is_integer():
        raise InputError(f"{where}: {column} must be a whole number, got {text!r}.")
    return int(value)
