"""Summaries of a trace analysis as plain data, for JSON output and terminal tables."""

from __future__ import annotations

from typing import Any

from energaizer.analyze.analysis import DeviceAnalysis, TraceAnalysis

ANALYSIS_SCHEMA = "energaizer.analysis/1"
TOP_SIGNATURES = 10


def summarize_analysis(analysis: TraceAnalysis) -> dict[str, Any]:
    """Return the analysis as JSON-ready data (schema `energaizer.analysis/1`)."""
    trace = analysis.trace
    return {
        "schema": ANALYSIS_SCHEMA,
        "trace": trace.path,
        "vendor": analysis.vendor,
        "rank": trace.rank,
        "devices": [_device_summary(device, analysis) for device in analysis.devices],
        "linking": {
            "launch_share": analysis.launch_link_share,
            "op_share": analysis.op_link_share,
        },
        "nesting_violations": analysis.nesting.violations,
        "read": {
            "lenient": trace.report.lenient,
            "skipped_events": trace.report.skipped_events,
            "repaired_events": trace.report.repaired_events,
            "truncated": trace.report.truncated,
            "set_aside_activity": trace.set_aside_activity,
        },
        "warnings": list(analysis.warnings),
    }


def _device_summary(device: DeviceAnalysis, analysis: TraceAnalysis) -> dict[str, Any]:
    activity = device.activity
    start_us, end_us = device.span_us
    total_us = float(activity["dur_us"].sum())
    grouped = activity.groupby("op_class").agg(
        count=("dur_us", "size"), time_us=("dur_us", "sum")
    ).sort_values("time_us", ascending=False)
    properties = analysis.trace.device_properties_for(device.device) or {}
    return {
        "device": device.device,
        "gpu_name": properties.get("name"),
        "activities": len(activity),
        "kernels": int((activity["category"] == "kernel").sum()),
        "busy_s": device.busy_us * 1e-6,
        "span_s": (end_us - start_us) * 1e-6,
        "by_class": [
            {
                "op_class": op_class,
                "count": int(row["count"]),
                "time_s": float(row.time_us) * 1e-6,
                "share": float(row.time_us) / total_us if total_us > 0 else 0.0,
            }
            for op_class, row in grouped.iterrows()
        ],
        "steps": {
            "method": device.steps.method,
            "period_kernels": device.steps.period_kernels,
            "windows": [
                {
                    "step": window.step,
                    "duration_s": (window.end_us - window.start_us) * 1e-6,
                    "kernels": int((activity["step"] == index).sum()),
                    "inferred": window.inferred,
                }
                for index, window in enumerate(device.steps.windows)
            ],
        },
        "signatures": len(device.signatures),
        "top_signatures": [
            {
                "name": row["name"],
                "op_class": row["op_class"],
                "count": int(row["count"]),
                "total_s": float(row["total_us"]) * 1e-6,
                "grid": [int(row["grid_x"]), int(row["grid_y"]), int(row["grid_z"])],
                "block": [int(row["block_x"]), int(row["block_y"]), int(row["block_z"])],
                "input_dims": row["input_dims"],
            }
            for _, row in device.signatures.head(TOP_SIGNATURES).iterrows()
        ],
    }
