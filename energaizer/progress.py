"""A progress bar on stderr for commands that can run longer than a few seconds.

Library functions report progress through a callback `(done, total)`. Only the command
line draws it, with rich, and only when stderr is a terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ProgressCallback = Callable[[int, int], None]


class ProgressBar:
    """A rich progress bar on stderr, or no callback at all when it is turned off.

    Used as a context manager, it yields the callback to pass to the library, or None
    when `enabled` is false. `unit="bytes"` shows sizes read (such as "0.3/1.0 GB"),
    `unit="items"` counts, and `unit=None` only a moving bar and the elapsed time, for
    work whose size is unknown. When `done` reaches `total`, the description becomes
    `finished_description`, if given, for the work that follows (such as the analysis
    after a trace is read). The bar is removed when the context exits.
    """

    def __init__(self, enabled: bool, total: int | None = None, description: str = "",
                 unit: str | None = "items", finished_description: str | None = None) -> None:
        self.enabled = enabled
        self.total = total
        self.description = description
        self.unit = unit
        self.finished_description = finished_description
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> ProgressCallback | None:
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns: list[Any] = [TextColumn("[progress.description]{task.description}"),
                              BarColumn()]
        if self.unit is None:
            columns.append(TimeElapsedColumn())
        else:
            columns.append(DownloadColumn() if self.unit == "bytes" else MofNCompleteColumn())
            columns.append(TimeRemainingColumn())
        self._progress = Progress(*columns, console=Console(stderr=True), transient=True)
        self._progress.start()
        self._task = self._progress.add_task(self.description, total=self.total)
        return self._update

    def _update(self, done: int, total: int) -> None:
        description = self.description
        if self.finished_description is not None and total and done >= total:
            description = self.finished_description
        self._progress.update(self._task, completed=done, total=total, description=description)

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.stop()
