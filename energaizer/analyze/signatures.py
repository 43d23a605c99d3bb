"""Fold identical GPU activities into signatures with counts.

Two activities share a signature when their name, launch grid, block size, input
shapes and input types match; the estimator prices each signature once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SIGNATURE_KEYS = [
    "name", "category", "grid_x", "grid_y", "grid_z", "block_x", "block_y", "block_z",
    "input_dims", "input_types",
]


def assign_signatures(activity: pd.DataFrame) -> np.ndarray:
    """Return a signature id per activity row; equal ids mean identical launches."""
    if activity.empty:
        return np.zeros(0, dtype=np.int64)
    keys = activity[SIGNATURE_KEYS]
    return keys.groupby(SIGNATURE_KEYS, sort=False, dropna=False).ngroup().to_numpy(np.int64)


def summarize_signatures(activity: pd.DataFrame) -> pd.DataFrame:
    """One row per signature: its keys, op class, count, total and mean duration."""
    if activity.empty:
        return pd.DataFrame(
            columns=["signature", *SIGNATURE_KEYS, "op_class", "count", "total_us", "mean_us"]
        )
    grouped = activity.groupby("signature", sort=False)
    summary = grouped[SIGNATURE_KEYS + ["op_class"]].first()
    summary["count"] = grouped.size()
    summary["total_us"] = grouped["dur_us"].sum()
    summary["mean_us"] = summary["total_us"] / summary["count"]
    summary = summary.reset_index().sort_values("total_us", ascending=False, kind="stable")
    return summary.reset_index(drop=True)
