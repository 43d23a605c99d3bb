"""Sweep grids: the configurations a sweep estimates, read from YAML.

A grid names either models or a folder of traces, and lists the values of each
dimension; the sweep estimates every combination. Example:

    models: [llama-3.1-8b, gpt2]
    gpus: [a100-sxm4-80gb, h100-sxm5-80gb]
    batch: [1, 8]
    seq: [512, 2048]
    dtypes: [bf16]
    phases: [prefill]
    clocks_mhz: [null, 1200]   # null: the profile's maximum clock
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from energaizer.errors import InputError
from energaizer.estimate import ATTENTIONS, DTYPES, PHASES
from energaizer.fileio import path_inside, read_yaml
from energaizer.trace.reader import TRACE_SUFFIXES

MODEL_KEYS = ("models", "gpus", "batch", "seq", "dtypes", "phases", "attention", "clocks_mhz")
TRACE_KEYS = ("traces", "gpus", "clocks_mhz")
OPTION_KEYS = ("calibration",)


@dataclass
class SweepGrid:
    """The values of each sweep dimension; `items()` expands their product."""

    models: list[str] = field(default_factory=list)
    traces: list[str] = field(default_factory=list)
    gpus: list[str | None] = field(default_factory=lambda: [None])
    batch: list[int] = field(default_factory=lambda: [1])
    seq: list[int] = field(default_factory=lambda: [1024])
    dtypes: list[str] = field(default_factory=lambda: ["bf16"])
    phases: list[str] = field(default_factory=lambda: ["prefill"])
    attention: list[str] = field(default_factory=lambda: ["default"])
    clocks_mhz: list[float | None] = field(default_factory=lambda: [None])
    calibration: str | None = None

    def items(self) -> list[dict[str, Any]]:
        """Return one dict of `energaizer.estimate` arguments per combination, grouped by
        model, phase and dtype so a worker reuses each captured model."""
        if self.traces:
            return [
                {"trace": trace, "gpu": gpu, "clock_mhz": clock}
                for trace, gpu, clock in itertools.product(self.traces, self.gpus, self.clocks_mhz)
            ]
        product = itertools.product(
            self.models, self.phases, self.dtypes, self.attention, self.gpus, self.batch,
            self.seq, self.clocks_mhz,
        )
        return [
            {"model": model, "phase": phase, "dtype": dtype, "attention": attention,
             "gpu": gpu, "batch": batch, "seq": seq, "clock_mhz": clock}
            for model, phase, dtype, attention, gpu, batch, seq, clock in product
        ]


def load_grid(path: str | Path) -> SweepGrid:
    """Read a sweep grid YAML file; raise InputError naming the invalid key or value.

    Relative `traces` and `calibration` paths are taken from the grid file's folder.
    """
    path = Path(path)
    document = read_yaml(path, "sweep grid")
    if not isinstance(document, dict):
        raise InputError(f"{path}: a sweep grid must be a YAML mapping of dimension lists.")
    return grid_from_mapping(document, base=path.parent, name=str(path))


def grid_from_mapping(document: dict[str, Any], base: Path = Path("."),
                      name: str = "grid") -> SweepGrid:
    """Build a SweepGrid from parsed YAML; single values count as one-element lists."""
    allowed = set(MODEL_KEYS) | set(TRACE_KEYS) | set(OPTION_KEYS)
    unknown = sorted(set(document) - allowed)
    if unknown:
        raise InputError(
            f"{name}: unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(allowed))}."
        )
    has_models = "models" in document
    has_traces = "traces" in document
    if has_models == has_traces:
        raise InputError(f"{name}: give either 'models' or 'traces' (a folder or list of files).")
    grid = SweepGrid()
    calibration = document.get("calibration")
    if calibration is not None:
        grid.calibration = str(path_inside(base, calibration, f"{name}: calibration"))
    if has_traces:
        extra = sorted(set(document) & (set(MODEL_KEYS) - set(TRACE_KEYS)))
        if extra:
            raise InputError(f"{name}: {', '.join(extra)} apply to models, not to traces.")
        grid.traces = _trace_files(document["traces"], base, name)
    else:
        grid.models = [str(model) for model in _as_list(document["models"], "models", name)]
        grid.batch = _positive_ints(document.get("batch", grid.batch), "batch", name)
        grid.seq = _positive_ints(document.get("seq", grid.seq), "seq", name)
        grid.dtypes = _choices(document.get("dtypes", grid.dtypes), "dtypes", DTYPES, name)
        grid.phases = _choices(document.get("phases", grid.phases), "phases", PHASES, name)
        grid.attention = _choices(document.get("attention", grid.attention), "attention",
                                  ATTENTIONS, name)
    if "gpus" in document:
        grid.gpus = [str(gpu) for gpu in _as_list(document["gpus"], "gpus", name)]
    grid.clocks_mhz = _clocks(document.get("clocks_mhz", grid.clocks_mhz), name)
    return grid


def _as_list(value: Any, key: str, name: str, allow_null: bool = False) -> list[Any]:
    """Return `value` as a non-empty list of scalars. Null entries are rejected unless
    `allow_null`, because str() would turn them into the name 'None'."""
    values = value if isinstance(value, list) else [value]
    if not values:
        raise InputError(f"{name}: '{key}' is empty; list at least one value.")
    for item in values:
        if item is None and not allow_null:
            raise InputError(f"{name}: '{key}' contains null (an empty or null entry); "
                             "remove it or write the value it stands for.")
        if isinstance(item, (list, dict)):
            raise InputError(f"{name}: '{key}' values must be single values, got {item!r}.")
    return values


def _positive_ints(value: Any, key: str, name: str) -> list[int]:
    values = _as_list(value, key, name)
    for item in values:
        if isinstance(item, bool) or not isinstance(item, int) or item < 1:
            raise InputError(f"{name}: '{key}' values must be whole numbers of at least 1, "
                             f"got {item!r}.")
    return values


def _choices(value: Any, key: str, allowed: tuple[str, ...], name: str) -> list[str]:
    values = [str(item) for item in _as_list(value, key, name)]
    for item in values:
        if item not in allowed:
            raise InputError(f"{name}: '{key}' value {item!r} is invalid; expected one of "
                             f"{', '.join(allowed)}.")
    return values


def _clocks(value: Any, name: str) -> list[float | None]:
    values = _as_list(value, "clocks_mhz", name, allow_null=True)
    for item in values:
        if item is None:
            continue
        is_number = not isinstance(item, bool) and isinstance(item, (int, float))
        if not is_number or not math.isfinite(item) or item <= 0:
            raise InputError(f"{name}: 'clocks_mhz' values must be positive, finite numbers "
                             f"in MHz or null for the maximum clock, got {item!r}.")
    return [None if item is None else float(item) for item in values]


def _trace_files(value: Any, base: Path, name: str) -> list[str]:
    """Expand a folder into its trace files; keep listed files as they are."""
    files: list[str] = []
    for entry in _as_list(value, "traces", name):
        path = path_inside(base, str(entry), f"{name}: trace path")
        if path.is_dir():
            found = sorted(item for item in path.iterdir()
                           if item.is_file() and item.name.endswith(TRACE_SUFFIXES))
            if not found:
                raise InputError(f"{name}: no trace files (*.json, *.json.gz) in {path}.")
            files.extend(str(item) for item in found)
        elif path.is_file():
            files.append(str(path))
        else:
            raise InputError(f"{name}: trace path {path} not found.")
    return files
