"""Matplotlib figures of a feature cost report, returned as PNG bytes.

The functions take plain data from `energaizer.report.cost` and compute nothing
themselves. They use the Agg backend, so no display is needed.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

FIGURE_SIZE = (6.4, 3.6)
DPI = 100


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return buffer.getvalue()


def energy_by_phase_png(phases: dict[str, float]) -> bytes:
    """Bar chart of IT energy per request in J for each phase."""
    figure, axes = plt.subplots(figsize=FIGURE_SIZE)
    axes.bar(list(phases), list(phases.values()), color=["#4c72b0", "#dd8452"][: len(phases)])
    axes.set_ylabel("IT energy per request (J)")
    axes.set_title("Energy per request by phase")
    return _png(figure)


def cost_by_prompt_png(sweep: list[dict[str, float]]) -> bytes:
    """Cost per request in US dollars against the prompt length in tokens."""
    figure, axes = plt.subplots(figsize=FIGURE_SIZE)
    lengths = [item["prompt_tokens"] for item in sweep]
    axes.plot(lengths, [item["cost_usd"] for item in sweep], marker="o")
    axes.set_xscale("log", base=2)
    axes.set_xlabel("prompt length (tokens)")
    axes.set_ylabel("cost per request (USD)")
    axes.set_title("Cost per request against prompt length")
    return _png(figure)


def power_timeline_png(timeline: list[dict[str, Any]]) -> bytes:
    """Step plot of the power of all GPUs over a request's life, in W."""
    figure, axes = plt.subplots(figsize=FIGURE_SIZE)
    for segment in timeline:
        axes.hlines(segment["power_w"], segment["start_s"], segment["end_s"],
                    color="#4c72b0" if segment["phase"] == "prefill" else "#dd8452",
                    linewidth=3)
    axes.set_xlabel("time since the request arrived (s)")
    axes.set_ylabel("power of all GPUs (W)")
    axes.set_ylim(bottom=0)
    axes.set_title("Power over a request's life (blue prefill, orange decode)")
    return _png(figure)


def idle_share_png(shares: dict[str, float]) -> bytes:
    """Pie chart of a request's energy: dynamic, static while busy, idle gaps."""
    figure, axes = plt.subplots(figsize=FIGURE_SIZE)
    labels = [name for name, value in shares.items() if value > 0]
    values = [value for value in shares.values() if value > 0]
    axes.pie(values, labels=labels, autopct="%1.0f%%")
    axes.set_title("Share of a request's energy")
    return _png(figure)
