"""A history of estimates in SQLite, to follow one workload's energy across commits.

The database defaults to ~/.local/share/energaizer/history.sqlite; the
ENERGAIZER_HISTORY environment variable or an explicit path overrides it.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

from energaizer.errors import InputError

logger = logging.getLogger(__name__)

HISTORY_ENV = "ENERGAIZER_HISTORY"
GIT_TIMEOUT_S = 5.0
# Estimate fields stored in their own columns; energy_j is required, the others optional.
RECORDED_FIELDS = ("energy_j", "duration_s", "energy_per_request_j")
# Invalid rows named one by one in the warning that `trend` logs; the rest are counted.
MAX_NAMED_INVALID_ROWS = 5
_SCHEMA = """
CREATE TABLE IF NOT EXISTS estimates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workload TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    git_commit TEXT NOT NULL,
    energy_j REAL,
    duration_s REAL,
    energy_per_request_j REAL,
    estimate_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS estimates_workload ON estimates (workload, recorded_at);
"""


def default_history_path() -> Path:
    """Return ENERGAIZER_HISTORY when set, else ~/.local/share/energaizer/history.sqlite."""
    override = os.environ.get(HISTORY_ENV)
    if override:
        return Path(override).expanduser()
    return Path.home() / ".local" / "share" / "energaizer" / "history.sqlite"


def current_commit(cwd: str | Path | None = None) -> str:
    """Return `git rev-parse HEAD` in `cwd`, or "" outside a repository or without git."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                              text=True, timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _connect(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path)
        connection.executescript(_SCHEMA)
    except (OSError, sqlite3.Error) as error:
        raise InputError(f"Cannot open the history database {path}: {error}. Set "
                         f"{HISTORY_ENV} or --db to a writable file.") from None
    return connection


def record(workload: str, estimate: dict[str, Any], path: Path | None = None,
           commit: str | None = None, source: str = "the estimate") -> int:
    """Store an estimate under a workload name; return its row id.

    Raises InputError, naming `source`, when energy_j is missing or a RECORDED_FIELDS
    value is not a finite number of at least 0, so the database never contains a row that
    `trend` cannot show.
    """
    if not workload:
        raise InputError("A workload name is needed to record an estimate.")
    if estimate.get("energy_j") is None:
        raise InputError(f"Cannot record {source}: it has no energy_j field. Record a file "
                         "written by `energaizer estimate --json`.")
    for name in RECORDED_FIELDS:
        value = estimate.get(name)
        if value is not None and not _is_valid_number(value):
            raise InputError(f"Cannot record {source}: {name} {value!r} is invalid; it must "
                             "be a finite number of at least 0.")
    connection = _connect(path or default_history_path())
    with connection:
        cursor = connection.execute(
            "INSERT INTO estimates (workload, recorded_at, git_commit, energy_j, duration_s, "
            "energy_per_request_j, estimate_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (workload, time.time(), current_commit() if commit is None else commit,
             *(_as_float(estimate.get(name)) for name in RECORDED_FIELDS),
             json.dumps(estimate, default=str)),
        )
    connection.close()
    return int(cursor.lastrowid)


def _is_valid_number(value: Any) -> bool:
    return (not isinstance(value, bool) and isinstance(value, numbers.Real)
            and math.isfinite(value) and value >= 0)


def _as_float(value: Any) -> float | None:
    return None if value is None else float(value)


def trend(workload: str, path: Path | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Return the latest `limit` records of a workload, oldest first, with the change in
    energy from the previous record.

    Rows that cannot be shown (energy_j missing, a value that is not a finite number, a
    recording time that is not a number) are skipped with one logged warning that names
    them; they still count towards `limit`.
    """
    path = path or default_history_path()
    connection = _connect(path)
    rows = connection.execute(
        "SELECT id, recorded_at, git_commit, energy_j, duration_s, energy_per_request_j "
        "FROM estimates WHERE workload = ? ORDER BY recorded_at DESC, id DESC LIMIT ?",
        (workload, limit),
    ).fetchall()
    connection.close()
    records = []
    invalid = []
    previous = None
    for row_id, recorded_at, commit, energy_j, duration_s, per_request_j in reversed(rows):
        problem = _row_problem(recorded_at, energy_j, duration_s, per_request_j)
        if problem:
            invalid.append(f"id {row_id} ({problem})")
            continue
        change = (energy_j / previous - 1) if previous else None
        records.append({"id": row_id, "recorded_at": recorded_at, "git_commit": commit,
                        "energy_j": energy_j, "duration_s": duration_s,
                        "energy_per_request_j": per_request_j, "energy_change": change})
        previous = energy_j
    if invalid:
        named = ", ".join(invalid[:MAX_NAMED_INVALID_ROWS])
        more = len(invalid) - MAX_NAMED_INVALID_ROWS
        logger.warning("Skipped %d invalid history record(s) of workload %r in %s: %s%s",
                       len(invalid), workload, path, named,
                       f" and {more} more" if more > 0 else "")
    return records


def _row_problem(recorded_at: Any, energy_j: Any, duration_s: Any, per_request_j: Any) -> str:
    """Return why a stored row cannot be shown, or "" when it can."""
    is_time = (not isinstance(recorded_at, bool) and isinstance(recorded_at, (int, float))
               and math.isfinite(recorded_at))
    if not is_time:
        return f"recorded_at {recorded_at!r} is not a time"
    if energy_j is None:
        return "energy_j is missing"
    values = {"energy_j": energy_j, "duration_s": duration_s,
              "energy_per_request_j": per_request_j}
    for name, value in values.items():
        if value is not None and not _is_valid_number(value):
            return f"{name} {value!r} is not a finite number of at least 0"
    return ""


def workloads(path: Path | None = None) -> list[str]:
    """Return every workload name in the database, sorted."""
    connection = _connect(path or default_history_path())
    names = [row[0] for row in connection.execute(
        "SELECT DISTINCT workload FROM estimates ORDER BY workload")]
    connection.close()
    return names
