"""Sweep results cached by content.

The key of an item is a SHA-256 of the item's estimate arguments, the energaizer
version and the calibration files in use. A trace item also hashes the trace file's
path, size and modification time, so an edited trace is estimated again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from energaizer import __version__
from energaizer.calibrate.profile import calibrations_dir

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "energaizer" / "sweep"


def calibration_digest(calibration: str | Path | None) -> str:
    """Hash the given calibration file, or every shipped calibration when none is given."""
    digest = hashlib.sha256()
    if calibration is not None:
        files = [Path(calibration)]
    else:
        files = sorted(calibrations_dir().glob("*.json"))
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def item_key(item: dict[str, Any], calibration_hash: str) -> str:
    """Return the cache key of one sweep item."""
    content = dict(item)
    trace = item.get("trace")
    if trace is not None:
        stat = os.stat(trace)
        content["trace_file"] = [str(Path(trace).resolve()), stat.st_size, stat.st_mtime_ns]
    text = json.dumps([content, __version__, calibration_hash], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class ResultCache:
    """One JSON file per finished item, under `folder/<first two key characters>/`."""

    def __init__(self, folder: str | Path = DEFAULT_CACHE_DIR) -> None:
        self.folder = Path(folder)

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._path(key).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def put(self, key: str, row: dict[str, Any]) -> None:
        """Store a successful row; the write goes through a temporary file so a reader
        never sees half a file."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(row))
        temporary.replace(path)
