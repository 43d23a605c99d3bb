"""Write sweep results: Parquet, CSV and a summary plot with the efficient frontier."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from energaizer.fileio import make_output_folder, write_atomically
from energaizer.sweep.run import SweepResult


def efficient_frontier(frame: pd.DataFrame) -> pd.Series:
    """Mark the rows that no other row beats on both time and energy per item.

    Rows with an error or missing values are never on the frontier.
    """
    marked = pd.Series(False, index=frame.index)
    if "energy_per_item_j" not in frame or "time_per_item_s" not in frame:
        return marked
    usable = frame.dropna(subset=["energy_per_item_j", "time_per_item_s"])
    ordered = usable.sort_values(["time_per_item_s", "energy_per_item_j"], kind="stable")
    lowest_energy = float("inf")
    for index, energy in ordered["energy_per_item_j"].items():
        if energy < lowest_energy:
            marked[index] = True
            lowest_energy = energy
    return marked


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
        axes.scatter(usable["time_per_item_s"] * 1e3, usable["energy_per_item_j"], s=12,
                     alpha=0.6, label="configurations")
        frontier = usable[usable["on_frontier"]].sort_values("time_per_item_s")
        axes.plot(frontier["time_per_item_s"] * 1e3, frontier["energy_per_item_j"], "o-",
                  color="tab:red", label="efficient frontier")
        axes.legend()
    axes.set_xlabel("time per item (ms)")
    axes.set_ylabel("energy per item (J)")
    axes.set_title("Sweep: energy against time per item")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    write_atomically(path, lambda target: figure.savefig(target, dpi=120, format="png"))
    plt.close(figure)
