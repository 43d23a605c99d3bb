"""Reading the sizes the performance model needs from an op's geometry."""

from __future__ import annotations

from typing import Any

from energaizer.workload.ops import Op


def geometry_sizes(op: Op, keys: tuple[str, ...],
                   defaults: dict[str, Any] | None = None) -> tuple[int, ...] | None:
    """Return op.geometry[key] as integers for each key, with `defaults` for absent or
    None values.

    Returns None when a key without a default is absent or not an integer, so that the
    caller can fall back to a model that needs no shape. Raises ValueError when a size
    is zero or negative.
    """
    defaults = defaults or {}
    values = [op.geometry.get(key) for key in keys]
    values = [defaults.get(key) if value is None else value for key, value in zip(keys, values)]
    try:
        sizes = tuple(int(value) for value in values)
    except (TypeError, ValueError):
        return None
    if min(sizes) <= 0:
        sizes_by_key = dict(zip(keys, sizes, strict=True))
        raise ValueError(
            f"Invalid geometry for op {op.name!r}: {sizes_by_key} must all be positive."
        )
    return sizes
