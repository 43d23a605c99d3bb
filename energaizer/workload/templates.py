"""Shape templates: the ops of one (model, phase, attention, dtype) as expressions in
batch size and sequence length, fitted from captures at two probe shapes and kept as JSON
files so later shapes need no capture at all."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from energaizer.workload import aten
from energaizer.workload.aten import OpSpec

if TYPE_CHECKING:
    from energaizer.workload.meta_run import _Recorded

logger = logging.getLogger(__name__)

TEMPLATE_FORMAT = 1
CACHE_ENV = "ENERGAIZER_CACHE_DIR"


def cache_dir() -> Path:
    """Return the folder of the on-disk template cache."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    return Path.home() / ".cache" / "energaizer" / "workloads"


# Shape templates


class Expression(NamedTuple):
    """An integer of an op as coefficient x batch^batch_power x (seq + seq_offset)^seq_power."""

    coefficient: int
    batch_power: int
    seq_power: int
    seq_offset: int

    def evaluate(self, batch: int, seq: int) -> int:
        return self.coefficient * batch ** self.batch_power * (seq + self.seq_offset) ** self.seq_power


def fit_integer(first: int, second: int, probes: list[tuple[int, int]], *,
                uses_batch: bool = True, uses_seq: bool = True) -> Expression | None:
    """Return the expression that gives `first` at probes[0] and `second` at probes[1].

    Candidates are tried from the simplest (a constant) upwards, and the first one that
    reproduces both values exactly is returned; None when no candidate does. A template
    whose probes share one batch size (or one seq) passes uses_batch (or uses_seq) False,
    so that no power of the shared size is fitted.
    """
    if first == second:
        return Expression(first, 0, 0, 0)
    (batch1, seq1), (batch2, seq2) = probes
    batch_powers = range(3) if uses_batch else range(1)
    seq_powers = range(3) if uses_seq else range(1)
    for offset in (0, 1, -1):
        for batch_power in batch_powers:
            for seq_power in seq_powers:
                if (batch_power, seq_power) == (0, 0) or (seq_power == 0 and offset != 0):
                    continue
                divisor1 = batch1 ** batch_power * (seq1 + offset) ** seq_power
                divisor2 = batch2 ** batch_power * (seq2 + offset) ** seq_power
                if divisor1 <= 0 or divisor2 <= 0:
                    continue
                if first % divisor1 or second % divisor2:
                    continue
                if first // divisor1 == second // divisor2:
                    return Expression(first // divisor1, batch_power, seq_power, offset)
    return None


def _fit_value(first: Any, second: Any, probes: list[tuple[int, int]],
               uses: tuple[bool, bool]) -> Any:
    """Return `first` with every int replaced by its Expression; raise ValueError when the
    two values differ in anything an expression cannot describe."""
    if isinstance(first, bool) or isinstance(second, bool):
        if first is not second:
            raise ValueError(f"{first!r} != {second!r}")
        return first
    if isinstance(first, int) and isinstance(second, int):
        expression = fit_integer(first, second, probes, uses_batch=uses[0], uses_seq=uses[1])
        if expression is None:
            raise ValueError(f"no expression gives {first} and {second}")
        return expression
    if isinstance(first, tuple) and isinstance(second, tuple):
        if len(first) != len(second):
            raise ValueError(f"{len(first)} tensors != {len(second)} tensors")
        return tuple(_fit_value(a, b, probes, uses) for a, b in zip(first, second))
    if first != second:
        raise ValueError(f"{first!r} != {second!r}")
    return first


def _fit_spec(first: OpSpec, second: OpSpec, probes: list[tuple[int, int]],
              uses: tuple[bool, bool]) -> OpSpec:
    if first[:4] != second[:4]:
        raise ValueError(f"{first.kind} {first.name} != {second.kind} {second.name}")
    names = [name for name, _ in first.params]
    if names != [name for name, _ in second.params]:
        raise ValueError(f"parameters of {first.name} differ")
    params = tuple((name, _fit_value(a, b, probes, uses) if name not in _CALL_COUNTS else max(a, b))
                   for (name, a), (_, b) in zip(first.params, second.params))
    return first._replace(params=params)


# Call counts are not sizes: Python may branch on a shape and make a call more or fewer,
# so the template keeps the larger count instead of fitting an expression.
_CALL_COUNTS = frozenset({aten.CPU_CALLS, aten.MODULE_CALLS})


def _evaluate(value: Any, batch: int, seq: int) -> Any:
    if isinstance(value, Expression):
        return value.evaluate(batch, seq)
    if isinstance(value, tuple):
        return tuple(_evaluate(item, batch, seq) for item in value)
    return value


@dataclass
class ShapeTemplate:
    """The ops of one (model, phase, attention, dtype) as expressions in batch and seq.

    `specs` lists the distinct launches and `sequence` the launch order as indices into
    it. Both are None when the probes could not be fitted, and `reason` gives the cause.
    """

    key: str
    model: dict[str, Any]
    probes: list[tuple[int, int]]
    specs: list[OpSpec] | None
    sequence: list[int] | None
    unmapped: dict[str, int] = field(default_factory=dict)
    assumed_scalar_reads: int = 0
    notes: list[str] = field(default_factory=list)
    reason: str | None = None

    @property
    def fitted(self) -> bool:
        return self.specs is not None and self.sequence is not None

    def instantiate(self, batch: int, seq: int) -> list:
        """Return the ops at (batch, seq), one per launch."""
        concrete = [spec._replace(params=tuple((name, _evaluate(value, batch, seq))
                                               for name, value in spec.params))
                    for spec in self.specs]
        return aten.build_ops(concrete, self.sequence)


def fit_template(key: str, model: dict[str, Any], probes: list[tuple[int, int]],
                 first: _Recorded, second: _Recorded) -> ShapeTemplate:
    """Fit two captures at the probe shapes into a template.

    The template is unfitted when the captures differ in their launches or in their
    unmapped ops, or when some integer has no expression that gives both values.
    """
    template = ShapeTemplate(key, model, probes, None, None, dict(first.unmapped),
                             first.assumed_scalar_reads, first.notes)
    if len(first.specs) != len(second.specs):
        template.reason = (f"the probes launch {len(first.specs)} and {len(second.specs)} "
                           "ops")
        return template
    if first.unmapped != second.unmapped:
        template.reason = "the probes run different unmapped ops"
        return template
    uses = (probes[0][0] != probes[1][0], probes[0][1] != probes[1][1])
    index: dict[tuple[OpSpec, OpSpec], int] = {}
    specs: list[OpSpec] = []
    sequence: list[int] = []
    for position, pair in enumerate(zip(first.specs, second.specs)):
        found = index.get(pair)
        if found is None:
            try:
                specs.append(_fit_spec(pair[0], pair[1], probes, uses))
            except ValueError as error:
                template.reason = f"op {position} ({pair[0].name}) does not fit: {error}"
                return template
            found = index[pair] = len(specs) - 1
        sequence.append(found)
    template.specs, template.sequence = specs, sequence
    return template


# ---------------------------------------------------------------------------------------
# Template files


def _encode(value: Any) -> Any:
    if isinstance(value, Expression):
        return {"x": list(value)}
    if isinstance(value, tuple):
        return {"t": [_encode(item) for item in value]}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "x" in value:
            return Expression(*(int(number) for number in value["x"]))
        return tuple(_decode(item) for item in value["t"])
    if isinstance(value, int) and not isinstance(value, bool):
        return Expression(value, 0, 0, 0)
    return value


def _template_path(key: str) -> Path:
    return cache_dir() / f"{key}.json"


def _read_template(key: str) -> ShapeTemplate | None:
    """Return the cached template for `key`, or None when absent, unreadable or stale."""
    path = _template_path(key)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        logger.warning("Ignoring unreadable workload template %s: %s", path, error)
        return None
    try:
        if data["format"] != TEMPLATE_FORMAT or data["key"] != key:
            return None
        specs = None
        if data["specs"] is not None:
            specs = [OpSpec(kind, name, phase, dtype,
                            tuple((param, _decode(value)) for param, value in params))
                     for kind, name, phase, dtype, params in data["specs"]]
        sequence = data["sequence"]
        if specs is not None and not all(0 <= index < len(specs) for index in sequence):
            raise ValueError("launch index out of range")
        return ShapeTemplate(key, data["model"], [tuple(point) for point in data["probes"]],
                             specs, sequence, data["unmapped"], data["assumed_scalar_reads"],
                             data["notes"], data["reason"])
    except (KeyError, TypeError, ValueError) as error:
        logger.warning("Ignoring corrupt workload template %s: %s", path, error)
        return None


def _write_template(template: ShapeTemplate) -> None:
    """Write a template atomically; a cache that cannot be written is logged and skipped."""
    specs = None
    if template.specs is not None:
        specs = [[spec.kind, spec.name, spec.phase, spec.dtype,
                  [[name, _encode(value)] for name, value in spec.params]]
                 for spec in template.specs]
    data = {
        "format": TEMPLATE_FORMAT, "key": template.key, "model": template.model,
        "probes": template.probes, "specs": specs, "sequence": template.sequence,
        "unmapped": template.unmapped, "assumed_scalar_reads": template.assumed_scalar_reads,
        "notes": template.notes, "reason": template.reason,
    }
    path = _template_path(template.key)
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent,
                                         prefix=f".{template.key}.", suffix=".tmp",
                                         delete=False) as file:
            temporary = file.name
            json.dump(data, file, separators=(",", ":"))
        os.replace(temporary, path)
    except OSError as error:
        logger.warning("Could not write workload template %s: %s", path, error)
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


