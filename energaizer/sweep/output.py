"""Write sweep results: Parquet, CSV and a summary plot with the efficient frontier."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from energaizer.fileio import make_output_folder, write_atomically
from energaizer.sweep.run import SweepResult


def efficient_frontier(frame: pd.DataFrame, by: str | None = "model") -> pd.Series:
    """Mark the rows that no other row beats on both time and energy per item.

    With a `by` column in the frame, each of its values (each model, by default) has its
    own frontier, because an item of one model is not an item of another. Rows with an
    error or missing values are never on the frontier.
    """
    marked = pd.Series(False, index=frame.index)
    if "energy_per_item_j" not in frame or "time_per_item_s" not in frame:
        return marked
    usable = frame.dropna(subset=["energy_per_item_j", "time_per_item_s"])
    if by is not None and by in usable:
        for _, group in usable.groupby(by, sort=False, dropna=False):
            marked[_frontier_of(group)] = True
        return marked
    marked[_frontier_of(usable)] = True
    return marked


def _frontier_of(usable: pd.DataFrame) -> list:
    """Return the index labels of the undominated rows of `usable`."""
    labels = []
    ordered = usable.sort_values(["time_per_item_s", "energy_per_item_j"], kind="stable")
    lowest_energy = float("inf")
    for index, energy in ordered["energy_per_item_j"].items():
        if energy < lowest_energy:
            labels.append(index)
            lowest_energy = energy
    return labels


def write_results(result: SweepResult, folder: str | Path) -> dict[str, Path]:
    """Write results.parquet, results.csv and summary.png to `folder`; return their paths."""
    folder = make_output_folder(folder)
    frame = result.frame()
    frame["on_frontier"] = efficient_frontier(frame)
    paths = {
        "parquet": folder / "results.parquet",
        "csv": folder / "results.csv",
        "plot": folder / "summary.png",
    }
    write_atomically(paths["parquet"], lambda target: frame.to_parquet(target, index=False))
    write_atomically(paths["csv"], lambda target: frame.to_csv(target, index=False))
    plot_summary(frame, paths["plot"])
    return paths


def plot_summary(frame: pd.DataFrame, path: Path) -> None:
    """Plot energy per item against time per item, with the frontier drawn as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 5))
    if "energy_per_item_j" in frame:
        usable = frame.dropna(subset=["energy_per_item_j", "time_per_item_s"])
        groups = (usable.groupby("model", sort=False) if "model" in usable
                  else [("configurations", usable)])
        for name, group in groups:
            points = axes.scatter(group["time_per_item_s"] * 1e3, group["energy_per_item_j"],
                                  s=12, alpha=0.5, label=str(name))
            frontier = group[group["on_frontier"]].sort_values("time_per_item_s")
            axes.plot(frontier["time_per_item_s"] * 1e3, frontier["energy_per_item_j"], "o-",
                      color=points.get_facecolor()[0], alpha=1.0, linewidth=1.5)
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.legend(title="points; lines: efficient frontier", fontsize="small")
    axes.set_xlabel("time per item (ms)")
    axes.set_ylabel("energy per item (J)")
    axes.set_title("Sweep: energy against time per item")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    write_atomically(path, lambda target: figure.savefig(target, dpi=120, format="png"))
    plt.close(figure)
