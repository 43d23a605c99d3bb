"""Measured calibration points, appended to a JSON Lines file as each is taken.

Each line is one JSON object with at least `key` (the plan point). A line is written,
flushed and synced before the next point starts, so a killed run loses at most the
point in progress. A last line cut short by the kill is ignored on reading.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from energaizer.errors import InputError

logger = logging.getLogger(__name__)


class PointStore:
    """The JSON Lines file of one calibration run."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, dict[str, Any]]:
        """Return the recorded points by key; an incomplete last line is skipped."""
        if not self.path.is_file():
            return {}
        records: dict[str, dict[str, Any]] = {}
        lines = self.path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines):
                    logger.warning("%s: last line %d is incomplete; that point is re-measured",
                                   self.path, number)
                    continue
                raise InputError(f"{self.path}, line {number}: not valid JSON; remove the "
                                 "line or start without --resume.") from None
            if not isinstance(record, dict) or "key" not in record:
                raise InputError(f"{self.path}, line {number}: a point needs a 'key' field.")
            records[record["key"]] = record
        return records

    def start(self, resume: bool) -> dict[str, dict[str, Any]]:
        """Prepare the file for a run and return the points already taken.

        Without `resume`, an existing file raises InputError rather than being replaced.
        """
        if not resume and self.path.exists():
            raise InputError(f"{self.path} already contains calibration points. Pass --resume to "
                             "continue that run, or remove the file to start over.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        records = self.load() if resume else {}
        self._truncate_partial_line()
        return records

    def _truncate_partial_line(self) -> None:
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with self.path.open("r+b") as stream:
                stream.truncate(data.rfind(b"\n") + 1)

    def append(self, record: dict[str, Any]) -> None:
        """Write one point and sync it to disk."""
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(record, sort_keys=True) + "\n")
            stream.flush()
            os.fsync(stream.fileno())
