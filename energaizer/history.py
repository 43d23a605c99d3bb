"""A history of estimates in SQLite, to follow one workload's energy across commits.

The database defaults to ~/.local/share/energaizer/history.sqlite; the
ENERGAIZER_HISTORY environment variable or an explicit path overrides it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

from energaizer.errors import InputError

HISTORY_ENV = "ENERGAIZER_HISTORY"
GIT_TIMEOUT_S = 5.0
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
           commit: str | None = None) -> int:
    """Store an estimate under a workload name; return its row id."""
    if not workload:
        raise InputError("A workload name is needed to record an estimate.")
    connection = _connect(path or default_history_path())
    with connection:
        cursor = connection.execute(
            "INSERT INTO estimates (workload, recorded_at, git_commit, energy_j, duration_s, "
            "energy_per_request_j, estimate_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (workload, time.time(), current_commit() if commit is None else commit,
             estimate.get("energy_j"), estimate.get("duration_s"),
             estimate.get("energy_per_request_j"), json.dumps(estimate, default=str)),
        )
    connection.close()
    return int(cursor.lastrowid)


def trend(workload: str, path: Path | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Return the latest `limit` records of a workload, oldest first, with the change in
    energy from the previous record."""
    connection = _connect(path or default_history_path())
    rows = connection.execute(
        "SELECT id, recorded_at, git_commit, energy_j, duration_s, energy_per_request_j "
        "FROM estimates WHERE workload = ? ORDER BY recorded_at DESC, id DESC LIMIT ?",
        (workload, limit),
    ).fetchall()
    connection.close()
    records = []
    previous = None
    for row_id, recorded_at, commit, energy_j, duration_s, per_request_j in reversed(rows):
        change = (energy_j / previous - 1) if previous and energy_j is not None else None
        records.append({"id": row_id, "recorded_at": recorded_at, "git_commit": commit,
                        "energy_j": energy_j, "duration_s": duration_s,
                        "energy_per_request_j": per_request_j, "energy_change": change})
        previous = energy_j
    return records


def workloads(path: Path | None = None) -> list[str]:
    """Return every workload name in the database, sorted."""
    connection = _connect(path or default_history_path())
    names = [row[0] for row in connection.execute(
        "SELECT DISTINCT workload FROM estimates ORDER BY workload")]
    connection.close()
    return names
