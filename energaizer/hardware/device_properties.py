"""Read the fields of a Kineto deviceProperties entry, checking their types."""

from __future__ import annotations

from energaizer.hardware.profiles import BYTES_PER_GIB, _is_number


def device_memory_gib(props: dict) -> float | None:
    """Return totalGlobalMem in GiB, or None when missing or invalid."""
    total = props.get("totalGlobalMem")
    return total / BYTES_PER_GIB if _is_number(total) and total > 0 else None


def device_sm_count(props: dict) -> int | None:
    """Return numSms, or None when missing or invalid."""
    count = props.get("numSms")
    return (
        count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else None
    )


def device_compute_capability(props: dict) -> tuple[int, int] | None:
    """Return (computeMajor, computeMinor); a missing minor counts as 0."""
    major = props.get("computeMajor")
    if not isinstance(major, int) or isinstance(major, bool):
        return None
    minor = props.get("computeMinor")
    if not isinstance(minor, int) or isinstance(minor, bool):
        minor = 0
    return major, minor
