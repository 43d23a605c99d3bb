"""Analyze a trace: classify, link, split steps and fold signatures per GPU."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from energaizer.analyze.classify import classify_kernel
from energaizer.analyze.link import NOT_LINKED, Links, link_activity
from energaizer.analyze.nesting import Nesting, nest_operators
from energaizer.analyze.signatures import assign_signatures, summarize_signatures
from energaizer.analyze.steps import StepSplit, split_steps
from energaizer.analyze.vendor import detect_vendor
from energaizer.trace.model import Trace


@dataclass
class DeviceAnalysis:
    """Analysis of the activity of one GPU in a trace.

    `activity` extends the trace's GPU activity rows of this device with op_class,
    cpu_op, top_op, input_dims and input_types (JSON text, empty when not recorded),
    launch_ts_us, step (index into `steps.windows`, -1 outside steps) and signature.
    """

    device: int
    activity: pd.DataFrame
    steps: StepSplit
    signatures: pd.DataFrame

    @property
    def busy_us(self) -> float:
        """Time during which at least one activity ran (union over streams)."""
        return busy_time_us(self.activity)

    @property
    def span_us(self) -> tuple[float, float]:
        """First start and last end of this GPU's activity."""
        if self.activity.empty:
            return 0.0, 0.0
        starts = self.activity["ts_us"].to_numpy()
        ends = starts + self.activity["dur_us"].to_numpy()
        return float(starts.min()), float(ends.max())


@dataclass
class TraceAnalysis:
    """Analysis of one trace file."""

    trace: Trace
    vendor: str
    devices: list[DeviceAnalysis]
    nesting: Nesting
    launch_link_share: float
    op_link_share: float
    warnings: list[str] = field(default_factory=list)


def analyze_trace(trace: Trace) -> TraceAnalysis:
    """Classify every GPU activity, link it to its CPU op, and split it into steps."""
    nesting = nest_operators(trace.cpu_ops, trace.runtime)
    links = link_activity(trace.gpu_activity, trace.runtime, trace.cpu_ops, nesting)
    activity = _annotate(trace, links)
    if activity["device"].nunique() == 1:
        # With one GPU, the grouping below would only copy the rows.
        devices = [_analyze_device(int(activity["device"].iloc[0]), activity, trace)]
    else:
        devices = [
            _analyze_device(device, rows.reset_index(drop=True), trace)
            for device, rows in activity.groupby("device", sort=True)
        ]
    analysis = TraceAnalysis(
        trace=trace,
        vendor=detect_vendor(trace),
        devices=devices,
        nesting=nesting,
        launch_link_share=links.launch_share,
        op_link_share=links.op_share,
        warnings=list(trace.warnings),
    )
    if nesting.violations:
        analysis.warnings.append(
            f"{nesting.violations} CPU ops end more than 1 us after their parent "
            f"(largest overrun {nesting.max_overrun_us:.1f} us); they were clipped to it."
        )
    return analysis


def _annotate(trace: Trace, links: Links) -> pd.DataFrame:
    """Add CPU op names, shapes, launch times and op classes to the activity rows."""
    activity = trace.gpu_activity.copy()
    cpu_names = trace.cpu_ops["name"]
    activity["cpu_op"] = _names_at(cpu_names, links.op_index)
    activity["top_op"] = _names_at(cpu_names, links.top_op_index)
    activity["input_dims"] = _json_texts(trace.cpu_ops["input_dims"], links.shape_op_index)
    activity["input_types"] = _json_texts(trace.cpu_ops["input_types"], links.shape_op_index)
    activity["shape_op"] = _names_at(cpu_names, links.shape_op_index)
    launch_ts = trace.runtime["ts_us"].to_numpy() if len(trace.runtime) else np.zeros(1)
    activity["launch_ts_us"] = np.where(
        links.runtime_index != NOT_LINKED, launch_ts[np.maximum(links.runtime_index, 0)], np.nan
    )
    activity["op_class"] = _op_classes(activity)
    return activity


def _op_classes(activity: pd.DataFrame) -> list[str]:
    """Classify each activity, once per distinct (name, cpu op, top op, category)."""
    columns = ("name", "cpu_op", "top_op", "category")
    combined = np.zeros(len(activity), dtype=np.int64)
    for column in columns:
        codes, values = pd.factorize(activity[column], use_na_sentinel=False)
        # Renumbered after each column, so the product stays below rows * values.
        combined, _ = pd.factorize(combined * len(values) + codes)
    _, first_rows = np.unique(combined, return_index=True)
    firsts = activity.iloc[first_rows]
    classes = [
        classify_kernel(name, cpu_op or top_op or None, category).value
        for name, cpu_op, top_op, category in zip(
            *(firsts[column].tolist() for column in columns)
        )
    ]
    return np.asarray(classes, dtype=object)[combined].tolist()


def _names_at(names: pd.Series, positions: np.ndarray) -> np.ndarray:
    """Return the name at each position ("" for NOT_LINKED) as an object array, reading
    only the distinct positions from the column."""
    distinct, inverse = np.unique(positions, return_inverse=True)
    if len(names):
        picked = names.iloc[np.maximum(distinct, 0)].to_numpy(dtype=object)
    else:
        picked = np.empty(len(distinct), dtype=object)
    picked[distinct == NOT_LINKED] = ""
    return picked[inverse.reshape(-1)]


def _json_texts(values: pd.Series, positions: np.ndarray) -> np.ndarray:
    """Return the compact JSON text of the value at each position ("" for NOT_LINKED).

    Each distinct object is encoded once, because the trace reader stores one list per
    distinct shape, which every op with that shape shares.
    """
    distinct, inverse = np.unique(positions, return_inverse=True)
    # NOT_LINKED (-1) picks the trailing None, whose text is "".
    objects = np.append(values.to_numpy(dtype=object), None)[distinct]
    # Every object is alive in `values`, so no two of them share an id.
    object_ids = np.fromiter(map(id, objects), dtype=np.int64, count=len(objects))
    object_codes, _ = pd.factorize(object_ids)
    _, first_positions = np.unique(object_codes, return_index=True)
    texts = np.asarray([_json_or_empty(objects[position]) for position in first_positions],
                       dtype=object)
    return texts[object_codes][inverse.reshape(-1)]


def _json_or_empty(value: object) -> str:
    if not value:
        return ""
    return json.dumps(value, separators=(",", ":"))


def _analyze_device(device: int, activity: pd.DataFrame, trace: Trace) -> DeviceAnalysis:
    steps = split_steps(activity, trace.cpu_ops, activity["launch_ts_us"].to_numpy(), device)
    activity["step"] = steps.step_of(activity["ts_us"].to_numpy())
    activity["signature"] = assign_signatures(activity)
    return DeviceAnalysis(device, activity, steps, summarize_signatures(activity))


def busy_time_us(activity: pd.DataFrame) -> float:
    """Length of the union of the activity intervals, in microseconds."""
    if activity.empty:
        return 0.0
    order = np.argsort(activity["ts_us"].to_numpy(), kind="stable")
    starts = activity["ts_us"].to_numpy()[order]
    ends = starts + activity["dur_us"].to_numpy()[order]
    reach = np.maximum.accumulate(ends)
    new_block = np.empty(len(starts), dtype=bool)
    new_block[0] = True
    new_block[1:] = starts[1:] > reach[:-1]
    block_id = np.cumsum(new_block) - 1
    block_start = starts[new_block]
    block_end = np.maximum.reduceat(ends, np.flatnonzero(new_block))
    return float((block_end - block_start).sum()) if len(block_id) else 0.0
