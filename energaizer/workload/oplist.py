"""Read a workload written by hand as a JSON list of ops.

The file is either a bare list of ops or an object:

    {"schema": "energaizer.workload/1", "name": "...", "description": "...",
     "eager_launches": true, "dtype": "bf16", "ops": [...]}

A top-level "dtype" is the default for ops that name none. Every op has an "op_class"
and the sizes its class needs, plus optional "name", "phase" and "count" (launches of
this op, at least 1):

    gemm            m, n, k, dtype; batch (1)
    attention       batch, heads, query_len, key_len, head_dim, dtype; kv_heads (heads),
                    causal (false)
    convolution     batch, in_channels, out_channels, height, width, kernel_h, kernel_w,
                    dtype; stride (1), padding (0), groups (1)
    elementwise, reduction, normalization, softmax, embedding
                    elements, dtype; reads (1), writes (1), flops_per_element (1)
    memcpy          bytes; kind ("device" or "host")
    memset          bytes
    communication   kind, bytes, world_size; dtype (bf16)

Validation is strict: an unknown field, class or dtype, a missing or non-positive size,
or a count below 1 raises InputError naming the op index and the field.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from energaizer.analyze.opclass import OpClass
from energaizer.errors import InputError
from energaizer.workload import ops
from energaizer.workload.ops import Op
from energaizer.workload.workload import Workload

SCHEMA = "energaizer.workload/1"
TOP_LEVEL_FIELDS = {"schema", "name", "description", "eager_launches", "dtype", "ops"}
COMMON_FIELDS = {"op_class", "name", "phase", "count"}
MEMORY_BOUND_CLASSES = {
    "elementwise": OpClass.ELEMENTWISE,
    "reduction": OpClass.REDUCTION,
    "normalization": OpClass.NORMALIZATION,
    "softmax": OpClass.SOFTMAX,
    "embedding": OpClass.EMBEDDING,
}
COLLECTIVE_KINDS = ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "all_to_all",
                    "send_recv")
# Required and optional fields of each op class, besides COMMON_FIELDS.
CLASS_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    "gemm": ({"m", "n", "k", "dtype"}, {"batch"}),
    "attention": ({"batch", "heads", "query_len", "key_len", "head_dim", "dtype"},
                  {"kv_heads", "causal"}),
    "convolution": ({"batch", "in_channels", "out_channels", "height", "width", "kernel_h",
                     "kernel_w", "dtype"}, {"stride", "padding", "groups"}),
    "memcpy": ({"bytes"}, {"kind"}),
    "memset": ({"bytes"}, set()),
    "communication": ({"kind", "bytes", "world_size"}, {"dtype"}),
    **{name: ({"elements", "dtype"}, {"reads", "writes", "flops_per_element"})
       for name in MEMORY_BOUND_CLASSES},
}


def load_op_list(path: str | Path) -> Workload:
    """Read an op-list JSON file into a Workload, raising InputError for any invalid part."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"Op-list file not found: {path}.") from None
    except OSError as error:
        raise InputError(f"Cannot read op-list file {path}: {error.strerror}.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"Op-list file {path} is not valid JSON: {error.msg} at line "
                         f"{error.lineno}, column {error.colno}.") from None
    return parse_op_list(data, default_name=path.stem, origin=str(path))


def parse_op_list(data: Any, *, default_name: str = "op-list",
                  origin: str = "<data>") -> Workload:
    """Build a Workload from parsed op-list JSON: a list of ops or an object with "ops"."""
    if isinstance(data, list):
        data = {"ops": data}
    if not isinstance(data, dict):
        raise InputError(f"{origin}: an op list must be a JSON object or a list of ops, "
                         f"not {type(data).__name__}.")
    unknown = sorted(set(data) - TOP_LEVEL_FIELDS)
    if unknown:
        raise InputError(f"{origin}: unknown top-level field(s) {', '.join(unknown)}; "
                         f"expected {', '.join(sorted(TOP_LEVEL_FIELDS))}.")
    schema = data.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise InputError(f"{origin}: unsupported schema {schema!r}; expected {SCHEMA!r}.")
    entries = data.get("ops")
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{origin}: \"ops\" must be a non-empty list of ops.")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise InputError(f"{origin}: \"name\" must be a non-empty string.")
    eager = data.get("eager_launches", True)
    if not isinstance(eager, bool):
        raise InputError(f"{origin}: \"eager_launches\" must be true or false, not {eager!r}.")
    default_dtype = data.get("dtype")
    if default_dtype is not None:
        _check_dtype(default_dtype, f"{origin}: top-level field 'dtype'")
    parsed = [_parse_op(entry, index, default_dtype, origin)
              for index, entry in enumerate(entries)]
    source = {"kind": "op_list", "path": origin, "schema": SCHEMA}
    return Workload(name, parsed, source, eager_launches=eager)


def _parse_op(entry: Any, index: int, default_dtype: str | None, origin: str) -> Op:
    where = f"{origin}: op {index}"
    if not isinstance(entry, dict):
        raise InputError(f"{where} must be a JSON object, not {type(entry).__name__}.")
    op_class = entry.get("op_class")
    if op_class not in CLASS_FIELDS:
        raise InputError(f"{where} has invalid op_class {op_class!r}; expected one of "
                         f"{', '.join(sorted(CLASS_FIELDS))}.")
    required, optional = CLASS_FIELDS[op_class]
    fields = dict(entry)
    if default_dtype is not None and "dtype" in required | optional:
        fields.setdefault("dtype", default_dtype)
    unknown = sorted(set(fields) - required - optional - COMMON_FIELDS)
    if unknown:
        raise InputError(f"{where} ({op_class}) has unknown field(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(sorted(required | optional | COMMON_FIELDS))}.")
    missing = sorted(required - set(fields))
    if missing:
        raise InputError(f"{where} ({op_class}) is missing field(s) {', '.join(missing)}.")
    reader = _FieldReader(fields, f"{where} ({op_class})")
    label = reader.text("name", op_class)
    phase = reader.text("phase", "")
    count = reader.integer("count", default=1)
    op = _build(op_class, reader, label, phase)
    return op.times(count) if count != 1 else op


def _build(op_class: str, reader: _FieldReader, label: str, phase: str) -> Op:
    if op_class == "gemm":
        return ops.gemm(reader.integer("m"), reader.integer("n"), reader.integer("k"),
                        reader.dtype(), batch=reader.integer("batch", default=1),
                        name=label, phase=phase)
    if op_class == "attention":
        return _build_attention(reader, label, phase)
    if op_class == "convolution":
        return _build_convolution(reader, label, phase)
    if op_class in MEMORY_BOUND_CLASSES:
        return ops.memory_bound(
            MEMORY_BOUND_CLASSES[op_class], reader.integer("elements"), reader.dtype(),
            reads=reader.number("reads", default=1.0),
            writes=reader.number("writes", default=1.0),
            flops_per_element=reader.number("flops_per_element", default=1.0),
            name=label, phase=phase)
    if op_class == "memcpy":
        kind = reader.choice("kind", ("device", "host"), default="device")
        return ops.copy(reader.integer("bytes"), kind=kind, name=label, phase=phase)
    if op_class == "memset":
        return ops.fill(reader.integer("bytes"), name=label, phase=phase)
    kind = reader.choice("kind", COLLECTIVE_KINDS)
    return ops.collective(kind, reader.integer("bytes"), reader.integer("world_size"),
                          reader.dtype(default="bf16"), name=label, phase=phase)


def _build_attention(reader: _FieldReader, label: str, phase: str) -> Op:
    heads = reader.integer("heads")
    kv_heads = reader.integer("kv_heads", default=heads)
    if heads % kv_heads:
        raise reader.error("kv_heads", f"{kv_heads} does not divide heads ({heads})")
    return ops.attention(reader.integer("batch"), heads, reader.integer("query_len"),
                         reader.integer("key_len"), reader.integer("head_dim"),
                         reader.dtype(), kv_heads=kv_heads,
                         causal=reader.boolean("causal", default=False), name=label,
                         phase=phase)


def _build_convolution(reader: _FieldReader, label: str, phase: str) -> Op:
    in_channels = reader.integer("in_channels")
    out_channels = reader.integer("out_channels")
    groups = reader.integer("groups", default=1)
    if in_channels % groups or out_channels % groups:
        raise reader.error("groups", f"{groups} does not divide in_channels ({in_channels}) "
                                     f"and out_channels ({out_channels})")
    try:
        return ops.convolution(
            reader.integer("batch"), in_channels, out_channels, reader.integer("height"),
            reader.integer("width"), reader.integer("kernel_h"), reader.integer("kernel_w"),
            reader.dtype(), stride=reader.integer("stride", default=1),
            padding=reader.integer("padding", default=0, minimum=0), groups=groups,
            name=label, phase=phase)
    except ValueError as error:
        raise InputError(f"{reader.where}: {error}") from None


def _check_dtype(value: Any, where: str) -> str:
    if not isinstance(value, str) or value not in ops.DTYPE_BYTES:
        raise InputError(f"{where} is invalid: unknown dtype {value!r}; expected one of "
                         f"{', '.join(sorted(ops.DTYPE_BYTES))}.")
    return value


class _FieldReader:
    """Typed access to one op's fields; every error names the op and the field."""

    def __init__(self, fields: dict[str, Any], where: str) -> None:
        self.fields = fields
        self.where = where

    def error(self, field: str, problem: str) -> InputError:
        return InputError(f"{self.where}: field {field!r} is invalid: {problem}.")

    def integer(self, field: str, *, default: int | None = None, minimum: int = 1) -> int:
        value = self.fields.get(field, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(field, f"expected an integer, got {value!r}")
        if value < minimum:
            raise self.error(field, f"expected at least {minimum}, got {value}")
        return value

    def number(self, field: str, *, default: float) -> float:
        value = self.fields.get(field, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(field, f"expected a number, got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise self.error(field, f"expected a finite number of at least 0, got {value}")
        return float(value)

    def boolean(self, field: str, *, default: bool) -> bool:
        value = self.fields.get(field, default)
        if not isinstance(value, bool):
            raise self.error(field, f"expected true or false, got {value!r}")
        return value

    def text(self, field: str, default: str) -> str:
        value = self.fields.get(field, default)
        if not isinstance(value, str):
            raise self.error(field, f"expected a string, got {value!r}")
        return value

    def choice(self, field: str, allowed: tuple[str, ...], *, default: str | None = None) -> str:
        value = self.fields.get(field, default)
        if value not in allowed:
            raise self.error(field, f"expected one of {', '.join(allowed)}, got {value!r}")
        return value

    def dtype(self, *, default: str | None = None) -> str:
        value = self.fields.get("dtype", default)
        return _check_dtype(value, f"{self.where}: field 'dtype'")
