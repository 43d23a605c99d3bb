"""The feature cost report: its data, and the Markdown, CSV and JSON files.

`build_cost_report` gathers every number once; the writers only format it. `report.html`
comes from `energaizer.report.html` and the figures from `energaizer.report.plots`.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from energaizer.costing.feature import FeatureCost, FeatureSpec, cost_per_request, feature_cost
from energaizer.costing.regions import CarbonIntensity
from energaizer.fileio import make_output_folder, write_atomically, write_text_atomically
from energaizer.serving.estimate import estimate_serving
from energaizer.serving.model import ServingModel

REPORT_SCHEMA = "energaizer.cost_report/1"
PROMPT_SWEEP_TOKENS = (128, 256, 512, 1024, 2048, 4096, 8192)
PERIODS = ("per_request", "per_million_tokens", "per_day", "per_month")
QUANTITIES = (
    ("it_energy_j", "J"), ("facility_energy_j", "J"), ("facility_energy_kwh", "kWh"),
    ("electricity_usd", "USD"), ("gpu_rental_usd", "USD"), ("cost_usd", "USD"),
    ("co2e_g", "g"), ("gpu_hours", "h"), ("output_tokens", "tokens"),
)

# How a region given in the spec was resolved, keyed by CarbonIntensity.fallback.
FALLBACK_WORDS = {
    None: "found as given",
    "country": "zone has no value of its own, so its country's was used",
    "world": "region not found, so the world average was used",
}


@dataclass
class CostReport:
    """Everything a cost report shows, as plain data."""

    cost: FeatureCost
    phases_j: dict[str, float]
    energy_shares_j: dict[str, float]
    timeline: list[dict[str, Any]]
    prompt_sweep: list[dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        cost = self.cost
        return {
            "schema": REPORT_SCHEMA,
            "feature": cost.feature.name,
            "pue": cost.feature.pue,
            "it_energy_j": cost.per_request["it_energy_j"],
            "facility_energy_j": cost.per_request["facility_energy_j"],
            "cost_usd": cost.per_request["cost_usd"],
            "co2e_g": cost.per_request["co2e_g"],
            **{period: getattr(cost, period) for period in PERIODS},
            "grid": cost.grid.to_dict(),
            "assumptions": cost.assumptions,
            "phases_j": self.phases_j,
            "energy_shares_j": self.energy_shares_j,
            "power_timeline": self.timeline,
            "prompt_sweep": self.prompt_sweep,
            "estimate": cost.serving.to_dict(),
        }


def build_cost_report(feature: FeatureSpec) -> CostReport:
    """Estimate the feature and gather the report's numbers, prompt sweep included."""
    model = ServingModel(feature.serving)
    serving = estimate_serving(feature.serving, model)
    cost = feature_cost(feature, serving)
    estimate = serving.estimate
    static_busy_j = estimate.gpu.idle_power_w * feature.serving.num_gpus * estimate.busy_s
    shares = {
        "dynamic": max(estimate.energy_j - static_busy_j - estimate.idle_energy_j, 0.0),
        "static while busy": static_busy_j,
        "idle between steps": estimate.idle_energy_j,
    }
    return CostReport(
        cost=cost,
        phases_j={"prefill": serving.prefill_energy_j, "decode": serving.decode_energy_j},
        energy_shares_j=shares,
        timeline=_timeline(serving),
        prompt_sweep=_prompt_sweep(feature, model, cost),
    )


def _timeline(serving) -> list[dict[str, Any]]:
    """Power of all GPUs over one request: its prefill, then each slice of its decode."""
    segments = [{"phase": "prefill", "start_s": 0.0, "end_s": serving.prefill_s,
                 "power_w": serving.prefill_power_w}]
    points = serving.decode_points
    start = serving.prefill_s
    steps_per_slice = serving.output_tokens / len(points)
    for point in points:
        end = start + steps_per_slice * point["step_s"]
        segments.append({"phase": "decode", "start_s": start, "end_s": end,
                         "power_w": point["avg_power_w"]})
        start = end
    return segments


def _prompt_sweep(feature: FeatureSpec, model: ServingModel,
                  cost: FeatureCost) -> list[dict[str, float]]:
    sweep = []
    for tokens in PROMPT_SWEEP_TOKENS:
        spec = feature.serving.with_overrides(prompt_tokens=tokens)
        request = cost_per_request(estimate_serving(spec, model), feature, cost.grid)
        sweep.append({"prompt_tokens": float(tokens), "cost_usd": request["cost_usd"],
                      "it_energy_j": request["it_energy_j"]})
    return sweep


def write_json(report: CostReport, path: Path) -> None:
    write_text_atomically(path, json.dumps(report.to_dict(), indent=2, default=str) + "\n")


def write_csv(report: CostReport, path: Path) -> None:
    """Write report.csv: one row per quantity, one column per period."""

    def write(target: Path) -> None:
        with target.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(["quantity", "unit", *PERIODS])
            for name, unit in QUANTITIES:
                writer.writerow([name, unit,
                                 *(f"{getattr(report.cost, p)[name]:.6g}" for p in PERIODS)])

    write_atomically(path, write)


def summary_rows(report: CostReport) -> list[tuple[str, str, list[str]]]:
    """Rows shown in the Markdown and HTML tables: label, unit, values per period."""
    cost = report.cost
    return [(name, unit, [f"{getattr(cost, period)[name]:.4g}" for period in PERIODS])
            for name, unit in QUANTITIES]


def assumption_lines(report: CostReport) -> list[str]:
    """Plain sentences stating every input, default and fallback behind the numbers."""
    cost, spec = report.cost, report.cost.feature
    serving, grid = cost.serving, cost.grid
    defaults = ", ".join(spec.defaults_used) or "none"
    return [
        (f"Model {spec.serving.model} on {spec.serving.num_gpus} x {serving.estimate.gpu.name}, "
         f"{spec.serving.batch} requests in flight, mean prompt {serving.prompt_tokens:.0f} and "
         f"mean output {serving.output_tokens:.0f} tokens."),
        (f"Prefix-cache hit rate {spec.serving.prefix_cache_hit_rate:g} (share of prompt "
         "tokens whose prefill is skipped); kernel times "
         + ("analytical, as for CUDA-graph decode."
            if spec.serving.time_corrections == "none"
            else "with the calibration's corrections for eager PyTorch runs.")),
        f"PUE {spec.pue:g}, applied once to IT energy to give facility energy.",
        (f"Electricity {spec.electricity_usd_per_kwh:g} USD/kWh, GPU rental "
         f"{spec.gpu_usd_per_hour:g} USD per GPU-hour, {spec.requests_per_day:g} requests per "
         "day."),
        grid_line(grid),
        f"Values left at their defaults: {defaults}.",
        f"Not counted: {cost.assumptions['not_counted']}.",
        *[f"Estimate note: {warning}" for warning in serving.estimate.warnings],
    ]


def grid_line(grid: CarbonIntensity) -> str:
    """Return the sentence stating the carbon intensity used and where it came from."""
    value = f"Grid carbon intensity {grid.carbon_intensity_g_per_kwh:g} g CO2e/kWh"
    if grid.used == "spec":
        ignored = f"; region {grid.requested} was ignored" if grid.requested else ""
        return f"{value}, given in the feature spec{ignored}."
    origin = f"{value} from {grid.used} ({grid.source}, {grid.year or 'year not given'})."
    if grid.fallback == "none":
        return f"{origin} No region given, so the world average was used."
    return f"{origin} Region {grid.requested}: {FALLBACK_WORDS[grid.fallback]}."


def write_markdown(report: CostReport, path: Path, images: dict[str, str]) -> None:
    """Write report.md, linking the PNG files named in `images`."""
    lines = [f"# Cost report: {report.cost.feature.name}", "",
             "| quantity | unit | per request | per 1M output tokens | per day | per month |",
             "|---|---|---|---|---|---|"]
    for name, unit, values in summary_rows(report):
        lines.append(f"| {name} | {unit} | {' | '.join(values)} |")
    lines += ["", "## Assumptions", ""]
    lines += [f"- {line}" for line in assumption_lines(report)]
    lines += ["", "## Figures", ""]
    lines += [f"![{title}]({file_name})" for title, file_name in images.items()]
    write_text_atomically(path, "\n".join(lines) + "\n")


def write_cost_report(feature: FeatureSpec, output_dir: Path) -> dict[str, Path]:
    """Write report.md, report.html, report.csv, report.json and the PNG figures."""
    from energaizer.report import html, plots

    make_output_folder(output_dir)
    report = build_cost_report(feature)
    figures = {
        "Energy per request by phase": ("energy_by_phase.png",
                                        plots.energy_by_phase_png(report.phases_j)),
        "Cost per request against prompt length": ("cost_by_prompt.png",
                                                   plots.cost_by_prompt_png(report.prompt_sweep)),
        "Power over a request's life": ("power_timeline.png",
                                        plots.power_timeline_png(report.timeline)),
        "Share of idle energy": ("idle_share.png", plots.idle_share_png(report.energy_shares_j)),
    }
    written = {}
    for file_name, png in figures.values():
        written[file_name] = write_atomically(output_dir / file_name,
                                              lambda target, data=png: target.write_bytes(data))
    paths = {name: output_dir / f"report.{name}" for name in ("md", "html", "csv", "json")}
    write_markdown(report, paths["md"], {title: name for title, (name, _) in figures.items()})
    html.write_html(report, paths["html"], {title: png for title, (_, png) in figures.items()})
    write_csv(report, paths["csv"])
    write_json(report, paths["json"])
    return {**paths, **written}
