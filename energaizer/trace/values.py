"""Convert the JSON values of trace fields into numbers, ids and sizes.

Timestamps may be numbers or numeric strings, ids may be integers beyond 2^53 or strings
of digits, and any field may be missing or of the wrong type. Each function returns None
(or a stated default) for a value it cannot read, never a guess.
"""

from __future__ import annotations

import math
import re
from typing import Any

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
# Bounds on an event's time in microseconds. A profiler timestamp counts from an epoch,
# so it stays far below 1e18 us (about 31,700 years), and no traced activity lasts a
# day. A value beyond them is damage, and float sums with it would lose the duration.
MAX_TIMESTAMP_US = 1e18
MAX_DURATION_US = 86_400e6
_DECIMAL_INTEGER = re.compile(r"-?[0-9]+", re.ASCII)


def to_float(value: Any) -> float | None:
    """Return a finite float from a JSON number or numeric string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond the float range (about 1.8e308)
            return None
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def to_int(value: Any) -> int | None:
    """Return an exact integer from a JSON integer or a string of digits, else None.

    Floats are accepted only when integral; ids written as floats beyond 2^53 have
    already lost digits in the file itself. A string must be an optional minus sign and
    ASCII digits, at most Python's limit for int conversion (4300 digits by default).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not _DECIMAL_INTEGER.fullmatch(text):
            return None
        try:
            return int(text)
        except ValueError:  # more digits than sys.get_int_max_str_digits() allows
            return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def to_int64(value: Any) -> int | None:
    """Return `to_int(value)` when it fits a signed 64-bit integer, else None.

    Used for the int64 columns (device, stream, sizes, bytes), where a larger value is
    malformed rather than an id to keep exactly.
    """
    number = to_int(value)
    if number is None or not INT64_MIN <= number <= INT64_MAX:
        return None
    return number


def to_dim3(value: Any) -> tuple[int, int, int]:
    """Read a CUDA grid or block size; missing or malformed sizes become (0, 0, 0)."""
    if isinstance(value, list) and len(value) == 3:
        sizes = [to_int64(item) for item in value]
        if all(size is not None and size >= 0 for size in sizes):
            return sizes[0], sizes[1], sizes[2]  # type: ignore[return-value]
    return 0, 0, 0


def to_pid_or_tid(value: Any) -> int | str:
    """Keep integer pids and tids as ints and anything else as its string form."""
    number = to_int(value)
    return number if number is not None else str(value)


def plausible_time(ts_us: float | None, dur_us: float | None) -> bool:
    """Return whether a start and a duration (both read by `to_float`) can be used."""
    return (ts_us is not None and dur_us is not None and abs(ts_us) < MAX_TIMESTAMP_US
            and 0 <= dur_us <= MAX_DURATION_US)
