"""Render estimates and analyses as rich tables in the terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from energaizer.report.names import short_kernel_name
from energaizer.results import Estimate

_NAME_WIDTH = 48
_MIN_NAME_WIDTH = 12


def _short(name: str, width: int = _NAME_WIDTH) -> str:
    return escape(short_kernel_name(name, width))


def _share(part: float, total: float) -> str:
    return f"{100.0 * part / total:.1f}%" if total > 0 else "-"


def render_estimate(estimate: Estimate, console: Console) -> None:
    """Print totals, energy per op class, per step, top kernels, and provenance."""
    _render_totals(estimate, console)
    _render_classes(estimate, console)
    if estimate.ranks:
        _render_ranks(estimate, console)
    if estimate.steps:
        _render_steps(estimate, console)
    _render_kernels(estimate, console)
    _render_provenance(estimate, console)


def _render_totals(estimate: Estimate, console: Console) -> None:
    gpu = estimate.gpu
    bound = " (lower bound: input incomplete)" if estimate.lower_bound else ""
    table = Table(title=escape(f"Energy estimate on {gpu.name} [{gpu.profile}]"), show_header=False)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("energy", f"{estimate.energy_j:,.2f} J ({estimate.energy_wh:.4f} Wh){bound}")
    low, high = estimate.uncertainty["energy_j_low"], estimate.uncertainty["energy_j_high"]
    table.add_row("energy range", f"{low:,.2f} J to {high:,.2f} J")
    table.add_row("duration", f"{estimate.duration_s:.6f} s")
    table.add_row("average power", f"{estimate.avg_power_w:.1f} W")
    table.add_row("busy time", f"{estimate.busy_s:.6f} s")
    table.add_row("idle time", f"{estimate.idle_s:.6f} s")
    table.add_row("idle energy", f"{estimate.idle_energy_j:,.2f} J")
    table.add_row("power limit / idle", f"{gpu.power_limit_w:.0f} W / {gpu.idle_power_w:.0f} W")
    table.add_row("SM clock", f"{gpu.clock_mhz:.0f} MHz")
    console.print(table)


def _render_classes(estimate: Estimate, console: Console) -> None:
    table = Table(title="Energy by op class")
    for column, justify in [("op class", "left"), ("kernels", "right"), ("time s", "right"),
                            ("energy J", "right"), ("share", "right")]:
        table.add_column(column, justify=justify)
    for item in estimate.by_class:
        table.add_row(item.op_class, f"{item.kernels:,}", f"{item.time_s:.6f}",
                      f"{item.energy_j:,.3f}", _share(item.energy_j, estimate.energy_j))
    table.add_row("idle (gaps)", "", f"{estimate.idle_s:.6f}", f"{estimate.idle_energy_j:,.3f}",
                  _share(estimate.idle_energy_j, estimate.energy_j))
    console.print(table)


def _render_ranks(estimate: Estimate, console: Console) -> None:
    table = Table(title="Energy per GPU")
    for column in ("rank", "device", "GPU", "energy J", "duration s", "avg power W"):
        table.add_column(column, justify="left" if column == "GPU" else "right")
    for part in estimate.ranks:
        rank = part.source.get("rank")
        table.add_row("-" if rank is None else str(rank), str(part.source.get("device", "-")),
                      part.gpu.profile, f"{part.energy_j:,.2f}", f"{part.duration_s:.6f}",
                      f"{part.avg_power_w:.1f}")
    console.print(table)


def _render_steps(estimate: Estimate, console: Console) -> None:
    inferred = any(step.inferred for step in estimate.steps)
    title = "Energy per step" + (" (inferred from repetition)" if inferred else "")
    table = Table(title=title)
    for column in ("step", "kernels", "duration s", "energy J", "avg power W"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for step in estimate.steps:
        power = step.energy_j / step.duration_s if step.duration_s > 0 else 0.0
        table.add_row(step.step, f"{step.kernels:,}", f"{step.duration_s:.6f}",
                      f"{step.energy_j:,.3f}", f"{power:.1f}")
    console.print(table)


def _render_kernels(estimate: Estimate, console: Console) -> None:
    from_trace = estimate.source.get("kind") == "trace"
    table = Table(title="Top kernels by energy" if from_trace else "Top ops by energy")
    columns = ("class", "count", "time s", "energy J", "avg power W")
    rows = [(kernel.op_class, f"{kernel.count:,}", f"{kernel.time_s:.6f}",
             f"{kernel.energy_j:,.3f}", f"{kernel.avg_power_w:.1f}")
            for kernel in estimate.top_kernels]
    widths = [max([len(column)] + [len(row[index]) for row in rows])
              for index, column in enumerate(columns)]
    # The numbers keep their full width on a narrow console and the name column takes
    # what is left: each of the 6 columns has 2 cells of padding, and 7 borders.
    name_width = max(_MIN_NAME_WIDTH,
                     min(_NAME_WIDTH, console.width - sum(widths) - 2 * 6 - 7))
    table.add_column("kernel" if from_trace else "op", no_wrap=True, overflow="ellipsis",
                     max_width=name_width)
    for column, width in zip(columns, widths):
        table.add_column(column, justify="left" if column == "class" else "right",
                         no_wrap=True, min_width=width)
    for kernel, row in zip(estimate.top_kernels, rows):
        table.add_row(_short(kernel.name), *row)
    console.print(table)


def _render_provenance(estimate: Estimate, console: Console) -> None:
    provenance = estimate.provenance
    console.print(
        f"Power model: {provenance.get('power_model')} "
        f"(calibration: {provenance.get('calibration')})"
    )
    for warning in provenance.get("warnings", []):
        console.print(Text("warning: ", style="yellow") + Text(warning), highlight=False)


def render_analysis(summary: dict[str, Any], console: Console) -> None:
    """Print the kernel breakdown of an analysis summary, one block per GPU."""
    console.print(escape(f"Trace: {summary['trace']} (vendor: {summary['vendor']})"), highlight=False)
    linking = summary["linking"]
    console.print(
        f"Linked to launch calls: {100 * linking['launch_share']:.1f}% of GPU activities; "
        f"to CPU ops: {100 * linking['op_share']:.1f}%"
    )
    for device in summary["devices"]:
        _render_device(device, console)
    for warning in summary["warnings"]:
        console.print(Text("warning: ", style="yellow") + Text(warning), highlight=False)


def _render_device(device: dict[str, Any], console: Console) -> None:
    name = escape(str(device.get("gpu_name") or "unknown GPU"))
    table = Table(title=(
        f"GPU {device['device']} ({name}): {device['activities']:,} activities, "
        f"busy {device['busy_s']:.6f} s of {device['span_s']:.6f} s"
    ))
    for column in ("op class", "count", "time s", "share"):
        table.add_column(column, justify="left" if column == "op class" else "right")
    for item in device["by_class"]:
        table.add_row(item["op_class"], f"{item['count']:,}", f"{item['time_s']:.6f}",
                      f"{100 * item['share']:.1f}%")
    console.print(table)

    steps = device["steps"]
    if steps["windows"]:
        period = f", period {steps['period_kernels']} kernels" if steps["period_kernels"] else ""
        step_table = Table(title=f"Steps ({steps['method']}{period})")
        for column in ("step", "kernels", "duration s"):
            step_table.add_column(column, justify="left" if column == "step" else "right")
        for window in steps["windows"]:
            step_table.add_row(window["step"], f"{window['kernels']:,}", f"{window['duration_s']:.6f}")
        console.print(step_table)
    else:
        console.print("Steps: none found (no ProfilerStep markers and no repeating period).")

    top = Table(title=f"Top signatures ({device['signatures']:,} distinct)")
    for column in ("kernel", "class", "count", "total s", "grid", "block"):
        top.add_column(column, justify="left" if column in ("kernel", "class") else "right")
    for item in device["top_signatures"]:
        top.add_row(_short(item["name"]), item["op_class"], f"{item['count']:,}",
                    f"{item['total_s']:.6f}", "x".join(map(str, item["grid"])),
                    "x".join(map(str, item["block"])))
    console.print(top)


def render_validation(summary: dict[str, Any], console: Console) -> None:
    """Print MAPE of time, power and energy overall, per GPU and per model."""
    table = Table(title=escape(f"Validation of {summary.get('file', 'measurements')}"))
    for column in ("group", "rows", "time MAPE %", "power MAPE %", "energy MAPE %"):
        table.add_column(column, justify="left" if column == "group" else "right")

    def add(label: str, block: dict[str, Any]) -> None:
        table.add_row(escape(label), str(block["rows"]), f"{block['time_mape']:.1f}",
                      f"{block['power_mape']:.1f}", f"{block['energy_mape']:.1f}")

    add("all", summary)
    for gpu, block in summary["per_gpu"].items():
        add(f"gpu {gpu}", block)
    for model, block in summary["per_model"].items():
        add(f"model {model}", block)
    console.print(table)
    if summary.get("in_sample"):
        console.print(in_sample_note(summary), highlight=False)


def in_sample_note(summary: dict[str, Any]) -> str:
    """Return the note that a validation's rows include the calibration's own fit rows."""
    in_sample = summary["in_sample"]
    lines = [
        f"Note: {in_sample['rows']} of {summary['rows']} rows are in-sample. The calibration "
        f"of {', '.join(in_sample['gpus'])} was fitted on {in_sample['fitted_on']}, so these "
        "errors understate the error on workloads the fit has not seen."
    ]
    for gpu, held_out in in_sample["held_out"].items():
        if "energy_mape" not in held_out:
            continue
        method = held_out.get("method") or "held-out"
        lines.append(
            f"Held-out errors stored with the {gpu} calibration ({method}): time "
            f"{held_out['time_mape']:.1f}%, power {held_out['power_mape']:.1f}%, energy "
            f"{held_out['energy_mape']:.1f}% (MAPE)."
        )
    return "\n".join(lines)
