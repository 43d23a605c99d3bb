"""Property-based tests of the trace reader on generated and mutated traces.

Properties checked:

* Strict and lenient reading raise nothing but TraceError (or a subclass) on any input.
  Inputs are generated events with fields of random JSON types, and real or generated
  traces cut at any byte, with bytes flipped, fields removed or field types changed.
* Valid JSON whose events have fields of unexpected types always reads in strict mode.
* A valid trace gives the same tables through every parser path: the strict whole-file
  decode, the lenient scanner `scan_events`, a gzip copy and, when the module exists,
  the streaming reader with small reads.
* Lenient reading of an array whose damage lies inside the bytes of one event k (from
  its `{` to its `}`) keeps every event i with |i - k| >= 2. Damage can merge event k
  with a neighbour, so the neighbours k - 1 and k + 1 are not guaranteed. A file cut at
  byte b keeps every event whose closing `}` lies before b. An invalid UTF-8 or control
  byte inside a name loses no event at all.

The scanner joins at most 16 pieces split at `},{`, so these properties hold for events
with fewer than 16 `},{` sequences inside them; the generated events stay below that.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from factories import trace_document, training_steps
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from energaizer.errors import TraceError
from energaizer.trace import read_trace
from energaizer.trace.decode import decode_trace, decode_typed_trace
from energaizer.trace.scan import scan_events
from energaizer.trace.tables import TableBuilder

HAS_STREAM = importlib.util.find_spec("energaizer.trace.stream") is not None

SETTINGS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
MUTATION_SETTINGS = settings(SETTINGS, max_examples=60)

SHARED_TRACE_NAMES = (
    "tracelens/h100_bert-small_infer.json.gz",
    "hta/a100pg509_triton_example_tiny.json.gz",
)
# Events kept from each shared trace, so each of the many reads stays short.
SHARED_TRACE_EVENTS = 300

# Integers at the edges that matter: 2^53 + 1 (beyond float precision), 2^64 - 1 (beyond
# int64), and values beyond uint64 and beyond the float range.
EDGE_INTEGERS = [0, -1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 10**30,
                 -(2**70), 10**400]

# Text that encodes to valid UTF-8 (no lone surrogates), so valid traces stay valid.
TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
NUMERIC_STRINGS = st.one_of(
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["", " 12 ", "1e400", "-0", "--5", "²", "NaN", "9" * 5000, "0x10"]),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(EDGE_INTEGERS),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
    NUMERIC_STRINGS,
)
# Lists and objects at most three wide, so an event contains far fewer than 16 `},{`.
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(TEXT, inner, max_size=3),
    ),
    max_leaves=8,
)

CATEGORIES = ["kernel", "Kernel", "gpu_memcpy", "gpu_memset", "cuda_runtime", "cuda_driver",
              "cpu_op", "user_annotation", "gpu_user_annotation", "python_function", "ac2g"]
TIME_VALUES = st.one_of(
    st.floats(min_value=0, max_value=2e15, allow_nan=False),
    st.integers(min_value=0, max_value=2**60),
    st.floats(min_value=0, max_value=2e15, allow_nan=False).map(str),
)
ID_VALUES = st.one_of(st.integers(min_value=-1, max_value=2**70),
                      st.sampled_from(EDGE_INTEGERS), st.integers(0, 10**6).map(str))


def _maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly the typed value, sometimes any JSON value, so every field gets wrong types."""
    return st.one_of(strategy, strategy, strategy, JSON_VALUES)


@st.composite
def kineto_events(draw: st.DrawFn) -> dict[str, Any]:
    """One Kineto-like event: a kernel, memcpy, runtime call, CPU op, flow or metadata."""
    if draw(st.integers(0, 9)) == 0:
        return {"ph": "M", "name": draw(st.sampled_from(["process_name", "thread_name"])),
                "pid": draw(_maybe(ID_VALUES)), "args": {"name": draw(TEXT)}}
    args = {
        "device": draw(_maybe(st.integers(0, 7))),
        "stream": draw(_maybe(st.integers(0, 64))),
        "correlation": draw(_maybe(ID_VALUES)),
        "External id": draw(_maybe(ID_VALUES)),
        "grid": draw(_maybe(st.lists(st.integers(0, 2**31), min_size=3, max_size=3))),
        "block": draw(_maybe(st.lists(st.integers(0, 1024), min_size=3, max_size=3))),
        "registers per thread": draw(_maybe(st.integers(0, 255))),
        "bytes": draw(_maybe(st.integers(0, 2**40))),
        "Input Dims": draw(_maybe(st.lists(st.lists(st.integers(0, 4096), max_size=3),
                                           max_size=3))),
    }
    removed = draw(st.sets(st.sampled_from(sorted(args))))
    event = {
        "ph": draw(_maybe(st.sampled_from(["X", "X", "X", "i", "s", "f"]))),
        "cat": draw(_maybe(st.sampled_from(CATEGORIES))),
        "name": draw(_maybe(TEXT)),
        "pid": draw(_maybe(st.one_of(st.integers(0, 2**20), st.just("CPU functions")))),
        "tid": draw(_maybe(st.integers(0, 2**20))),
        "ts": draw(_maybe(TIME_VALUES)),
        "dur": draw(_maybe(TIME_VALUES)),
        "args": {key: value for key, value in args.items() if key not in removed},
    }
    for key in draw(st.sets(st.sampled_from(["ph", "cat", "name", "pid", "tid", "ts", "dur",
                                             "args"]), max_size=2)):
        del event[key]
    return event


@st.composite
def trace_texts(draw: st.DrawFn) -> tuple[bytes, str]:
    """A valid trace file's bytes and its form: an object with `traceEvents` (metadata
    before or after the events) or a bare event array."""
    events = draw(st.lists(kineto_events(), max_size=25))
    form = draw(st.sampled_from(["object", "array"]))
    if form == "array":
        document: Any = events
    else:
        metadata = {
            "schemaVersion": 1,
            "deviceProperties": [{"id": 0, "name": draw(TEXT), "numSms": draw(JSON_VALUES)}],
            "distributedInfo": {"rank": draw(_maybe(st.integers(0, 7)))},
        }
        if draw(st.booleans()):
            document = {**metadata, "traceEvents": events}
        else:
            document = {"traceEvents": events, **metadata}
    indent = draw(st.sampled_from([None, 1, 2]))
    text = json.dumps(document, indent=indent, ensure_ascii=draw(st.booleans()))
    return text.encode(), form


def _small_generated_trace() -> bytes:
    return json.dumps(trace_document(training_steps(steps=4)), indent=1).encode()


def _shared_trace(shared_data: Path, name: str) -> bytes:
    document = json.loads(gzip.decompress((shared_data / "traces" / name).read_bytes()))
    document["traceEvents"] = document["traceEvents"][:SHARED_TRACE_EVENTS]
    return json.dumps(document, indent=1).encode()


@pytest.fixture(scope="module")
def seed_traces(request: pytest.FixtureRequest) -> list[bytes]:
    """The generated trace, plus slices of two public traces when shared data exists."""
    seeds = [_small_generated_trace()]
    try:
        shared_data = request.getfixturevalue("shared_data")
    except pytest.skip.Exception:
        return seeds
    return seeds + [_shared_trace(shared_data, name) for name in SHARED_TRACE_NAMES]


def _read_both_modes(path: Path) -> None:
    """Read `path` strictly and leniently; a TraceError is fine, anything else fails."""
    for lenient in (False, True):
        try:
            read_trace(path, lenient=lenient)
        except TraceError:
            pass


def _table_frames(events: list) -> dict[str, Any]:
    builder = TableBuilder()
    builder.add_all(events)
    gpu_activity, set_aside = builder.gpu_frame()
    return {
        "gpu_activity": gpu_activity,
        "runtime": builder.runtime_frame(),
        "cpu_ops": builder.cpu_frame(),
        "set_aside": set_aside,
        "unusable": builder.unusable_events,
    }


def _assert_same_tables(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    for name in ("gpu_activity", "runtime", "cpu_ops"):
        pd.testing.assert_frame_equal(actual[name], expected[name], obj=name)
    assert actual["set_aside"] == expected["set_aside"]
    assert actual["unusable"] == expected["unusable"]


def _assert_same_trace(actual, expected) -> None:
    pd.testing.assert_frame_equal(actual.gpu_activity, expected.gpu_activity)
    pd.testing.assert_frame_equal(actual.runtime, expected.runtime)
    pd.testing.assert_frame_equal(actual.cpu_ops, expected.cpu_ops)
    assert actual.metadata == expected.metadata
    assert actual.form == expected.form
    assert actual.warnings == expected.warnings


# Generated event streams.

@SETTINGS
@given(trace=trace_texts(), compress=st.booleans())
def test_generated_trace_reads_strictly(tmp_path_factory, trace, compress):
    data, form = trace
    path = tmp_path_factory.mktemp("generated") / "trace.json"
    path.write_bytes(gzip.compress(data) if compress else data)
    try:
        loaded = read_trace(path)
    except TraceError as error:
        # The only valid JSON the reader rejects is a trace with no events at all.
        assert "no event" in str(error) or "empty" in str(error), str(error)
        return
    assert loaded.form == form


@SETTINGS
@given(trace=trace_texts())
def test_parser_paths_give_same_tables(trace):
    data, _ = trace
    strict = decode_trace(data, "generated")
    scanned = scan_events(data)
    assert scanned.skipped_events == 0
    assert scanned.repaired_events == 0
    assert not scanned.truncated
    assert len(scanned.events) == len(strict.events)
    assert scanned.metadata == strict.metadata
    _assert_same_tables(_table_frames(scanned.events), _table_frames(strict.events))


# Events whose fields all have the types Kineto writes, so the typed decoder accepts them,
# with values at the edges each column must handle.
TYPED_INTEGERS = st.one_of(st.integers(-5, 2**20), st.sampled_from(EDGE_INTEGERS[:-1]))
TYPED_ARG_VALUES = {
    "device": st.one_of(st.none(), TYPED_INTEGERS),
    "stream": st.one_of(st.none(), TYPED_INTEGERS),
    "correlation": st.one_of(st.none(), TYPED_INTEGERS),
    "External id": st.one_of(st.none(), TYPED_INTEGERS),
    "external id": st.one_of(st.none(), TYPED_INTEGERS),
    "grid": st.one_of(st.none(), st.lists(TYPED_INTEGERS, min_size=3, max_size=3)),
    "block": st.one_of(st.none(), st.lists(TYPED_INTEGERS, min_size=3, max_size=3)),
    "registers per thread": st.one_of(st.none(), TYPED_INTEGERS),
    "shared memory": st.one_of(st.none(), TYPED_INTEGERS),
    "bytes": st.one_of(st.none(), TYPED_INTEGERS),
    "Input Dims": JSON_VALUES,
    "Input type": JSON_VALUES,
    "Call stack": JSON_VALUES,
}


@st.composite
def typed_kineto_events(draw: st.DrawFn) -> dict[str, Any]:
    """One event of the types Kineto writes: a kernel, memcpy, runtime call, CPU op or
    flow, with some fields missing or null."""
    keys = draw(st.sets(st.sampled_from(sorted(TYPED_ARG_VALUES))))
    # Mostly valid values, so that most events become rows.
    event = {
        "ph": draw(st.sampled_from(["X"] * 8 + ["i", "f"])),
        "cat": draw(st.sampled_from(CATEGORIES)),
        "name": draw(st.one_of(*[TEXT] * 8, st.none())),
        "pid": draw(st.one_of(TYPED_INTEGERS, st.sampled_from(["CPU functions", "12", " 7"]))),
        "tid": draw(st.one_of(*[TYPED_INTEGERS] * 4, st.none())),
        "ts": draw(st.one_of(*[st.floats(0, 2e15, allow_nan=False)] * 4,
                             st.integers(0, 2**60), st.floats(-10, 0), st.none())),
        "dur": draw(st.one_of(*[st.floats(0, 1e6, allow_nan=False)] * 4,
                              st.integers(0, 2**40), st.floats(-2, 0))),
        "args": {key: draw(TYPED_ARG_VALUES[key]) for key in sorted(keys)},
    }
    if draw(st.integers(0, 9)) == 0:
        del event[draw(st.sampled_from(sorted(event)))]
    return event


@settings(SETTINGS, max_examples=200)
@given(events=st.lists(typed_kineto_events(), min_size=1, max_size=30))
def test_typed_path_gives_same_tables(events):
    data = json.dumps(trace_document(events)).encode()
    typed = decode_typed_trace(data)
    assert typed is not None
    builder = TableBuilder()
    if not builder.add_typed(typed.events):
        return  # an input shape or type that does not decode; add_all reads those
    gpu_activity, set_aside = builder.gpu_frame()
    typed_tables = {
        "gpu_activity": gpu_activity,
        "runtime": builder.runtime_frame(),
        "cpu_ops": builder.cpu_frame(),
        "set_aside": set_aside,
        "unusable": builder.unusable_events,
    }
    _assert_same_tables(typed_tables, _table_frames(decode_trace(data, "typed").events))


@SETTINGS
@given(trace=trace_texts())
def test_gzip_and_plain_give_same_trace(tmp_path_factory, trace):
    data, _ = trace
    folder = tmp_path_factory.mktemp("gzip")
    plain = folder / "trace.json"
    plain.write_bytes(data)
    compressed = folder / "trace.json.gz"
    compressed.write_bytes(gzip.compress(data))
    _assert_same_trace(read_trace(compressed), read_trace(plain))


@pytest.mark.skipif(not HAS_STREAM, reason="energaizer.trace.stream is not present")
@SETTINGS
@given(trace=trace_texts(), compress=st.booleans(), read_bytes=st.sampled_from([64, 512, 4096]))
def test_stream_gives_same_trace(tmp_path_factory, trace, compress, read_bytes):
    from energaizer.trace.stream import stream_trace

    data, _ = trace
    path = tmp_path_factory.mktemp("stream") / "trace.json"
    path.write_bytes(gzip.compress(data) if compress else data)
    streamed = stream_trace(path, read_bytes=read_bytes, flush_rows=3)
    # None means the streaming reader handed the file to the whole-file reader.
    if streamed is not None:
        _assert_same_trace(streamed, read_trace(path))


# Mutations of real and generated traces.

def _cut_flip_or_drop(data: bytes, draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["cut", "flip", "drop", "insert"]))
    position = draw(st.integers(0, len(data)))
    if kind == "cut":
        return data[:position]
    if kind == "flip":
        position = min(position, len(data) - 1)
        return data[:position] + bytes([draw(st.integers(0, 255))]) + data[position + 1 :]
    if kind == "drop":
        return data[:position] + data[position + draw(st.integers(1, 64)) :]
    token = draw(st.sampled_from([b'"', b"}", b"},{", b"]", b"\xff", b"\x01", b"\\", b"{"]))
    return data[:position] + token + data[position:]


def _change_field(document: Any, draw: st.DrawFn) -> Any:
    events = document["traceEvents"] if isinstance(document, dict) else document
    event = events[draw(st.integers(0, len(events) - 1))]
    target = event
    if isinstance(event.get("args"), dict) and event["args"] and draw(st.booleans()):
        target = event["args"]
    if not target:
        return document
    key = draw(st.sampled_from(sorted(target)))
    if draw(st.booleans()):
        del target[key]
    else:
        target[key] = draw(JSON_VALUES)
    return document


@MUTATION_SETTINGS
@given(data=st.data(), seed_index=st.integers(0, 2), rounds=st.integers(1, 4),
       compress=st.booleans())
def test_damaged_trace_raises_only_trace_error(tmp_path_factory, seed_traces, data,
                                               seed_index, rounds, compress):
    mutated = seed_traces[seed_index % len(seed_traces)]
    for _ in range(rounds):
        mutated = _cut_flip_or_drop(mutated, data.draw)
    path = tmp_path_factory.mktemp("damaged") / "trace.json"
    path.write_bytes(gzip.compress(mutated) if compress else mutated)
    _read_both_modes(path)


@MUTATION_SETTINGS
@given(data=st.data(), seed_index=st.integers(0, 2), cut_fraction=st.floats(0, 1))
def test_cut_gzip_raises_only_trace_error(tmp_path_factory, seed_traces, data, seed_index,
                                          cut_fraction):
    compressed = gzip.compress(seed_traces[seed_index % len(seed_traces)])
    path = tmp_path_factory.mktemp("cut-gzip") / "trace.json.gz"
    path.write_bytes(compressed[: int(len(compressed) * cut_fraction)])
    _read_both_modes(path)


@MUTATION_SETTINGS
@given(data=st.data(), seed_index=st.integers(0, 2), changes=st.integers(1, 6))
def test_changed_field_types_read_strictly(tmp_path_factory, seed_traces, data, seed_index,
                                           changes):
    document = json.loads(seed_traces[seed_index % len(seed_traces)])
    for _ in range(changes):
        document = _change_field(document, data.draw)
    path = tmp_path_factory.mktemp("changed") / "trace.json"
    path.write_bytes(json.dumps(document).encode())
    # The JSON stays valid, so strict reading must succeed whatever the field types.
    read_trace(path)
    read_trace(path, lenient=True)


@SETTINGS
@given(events=st.lists(kineto_events(), max_size=20), compress=st.booleans(),
       data=st.data())
def test_random_bytes_in_event_raise_only_trace_error(tmp_path_factory, events, compress,
                                                      data):
    text = json.dumps(events).encode()
    position = data.draw(st.integers(0, len(text)))
    noise = data.draw(st.binary(max_size=16))
    path = tmp_path_factory.mktemp("noise") / "trace.json"
    mutated = text[:position] + noise + text[position:]
    path.write_bytes(gzip.compress(mutated) if compress else mutated)
    _read_both_modes(path)


# Lenient reading keeps undamaged events.

def _named_events(count: int) -> list[bytes]:
    """Serialised kernels named `event-<i>`, each with nested args."""
    pieces = []
    for index in range(count):
        event = {"ph": "X", "cat": "kernel", "name": f"event-{index}", "pid": 0, "tid": 7,
                 "ts": 1000.0 + index, "dur": 1.0,
                 "args": {"correlation": index, "grid": [1, 1, 1], "nested": {"a": [{"b": 1}]}}}
        pieces.append(json.dumps(event).encode())
    return pieces


def _kept_names(data: bytes) -> set[str]:
    try:
        decoded = decode_trace(data, "damaged", lenient=True)
    except TraceError:
        return set()
    return {event.name for event in decoded.events if isinstance(event.name, str)}


@SETTINGS
@given(count=st.integers(3, 12), data=st.data())
def test_lenient_keeps_events_away_from_damage(count, data):
    pieces = _named_events(count)
    damaged = data.draw(st.integers(0, count - 1))
    piece = pieces[damaged]
    start = data.draw(st.integers(0, len(piece) - 1))
    end = data.draw(st.integers(start, min(len(piece), start + 32)))
    replacement = data.draw(st.binary(max_size=16))
    pieces[damaged] = piece[:start] + replacement + piece[end:]
    text = b"[\n" + b",\n".join(pieces) + b"\n]"

    kept = _kept_names(text)
    for index in range(count):
        if abs(index - damaged) >= 2:
            assert f"event-{index}" in kept, f"event {index} lost; damage in event {damaged}"


@SETTINGS
@given(count=st.integers(1, 12), form=st.sampled_from(["object", "array"]), data=st.data())
def test_lenient_keeps_events_before_cut(count, form, data):
    pieces = _named_events(count)
    body = b"[" + b", ".join(pieces) + b"]"
    prefix = b'{"schemaVersion": 1, "traceEvents": ' if form == "object" else b""
    text = prefix + body + (b"}" if form == "object" else b"")
    cut = data.draw(st.integers(len(prefix) + 1, len(text)))
    truncated = text[:cut]

    kept = _kept_names(truncated)
    offset = len(prefix) + 1
    for index, piece in enumerate(pieces):
        closing = offset + len(piece) - 1
        if closing < cut:
            assert f"event-{index}" in kept, f"event {index} lost; cut at byte {cut}"
        offset += len(piece) + len(b", ")


@SETTINGS
@given(count=st.integers(2, 10), data=st.data())
def test_lenient_repairs_bad_byte_in_name(count, data):
    pieces = _named_events(count)
    damaged = data.draw(st.integers(0, count - 1))
    bad_byte = data.draw(st.one_of(st.integers(0x00, 0x1F), st.integers(0x80, 0xFF)))
    marker = f'"event-{damaged}'.encode()
    pieces[damaged] = pieces[damaged].replace(marker, marker + bytes([bad_byte]), 1)
    text = b"[" + b",".join(pieces) + b"]"

    decoded = decode_trace(text, "damaged", lenient=True)
    assert len(decoded.events) == count
    assert decoded.report.skipped_events == 0
    assert decoded.report.repaired_events <= 1


# Regressions found by fuzzing and by these properties.

@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("correlation", "9" * 5000),  # more digits than int() converts by default
        ("correlation", "²"),  # a Unicode digit that int() rejects
        ("correlation", "--5"),
        ("device", 2**70),  # beyond the int64 device column
        ("registers per thread", 2**64),
        ("grid", [2**63, 1, 1]),
        ("bytes", -(2**64)),
    ],
)
def test_odd_integer_args_read(tmp_path, field, value):
    event = {"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": 1000,
             "dur": 5, "args": {"device": 0, "stream": 7, "correlation": 1}}
    event["args"][field] = value
    path = tmp_path / "trace.json"
    path.write_text(json.dumps([event]))
    loaded = read_trace(path)
    assert len(loaded.gpu_activity) == 1


def test_timestamp_beyond_float_range_is_unusable(tmp_path):
    event = {"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": 10**400,
             "dur": 5, "args": {}}
    path = tmp_path / "trace.json"
    path.write_text(json.dumps([event]))
    loaded = read_trace(path)
    assert loaded.gpu_activity.empty
    assert loaded.unusable_events == 1


@pytest.mark.parametrize("depth", [1000, 5000])
def test_deep_nesting_raises_trace_error(tmp_path, depth):
    deep = b"[" * depth + b"]" * depth
    good = b'{"ph": "X", "cat": "kernel", "name": "k", "ts": 1, "dur": 1, "args": {}}'
    text = b'[' + good + b', {"ph": "X", "name": "deep", "args": ' + deep + b"}]"
    path = tmp_path / "trace.json"
    path.write_bytes(text)
    with pytest.raises(TraceError, match="nested deeper"):
        read_trace(path)
    lenient = read_trace(path, lenient=True)
    assert list(lenient.gpu_activity["name"]) == ["k"]
    assert lenient.report.skipped_events == 1


@pytest.mark.parametrize("where", ["event name", "device name"])
def test_invalid_utf8_in_object_form_is_located(tmp_path, where):
    name = b"bad\xff" if where == "event name" else b"k"
    device = b"bad\xff" if where == "device name" else b"A100"
    text = (b'{"deviceProperties": [{"id": 0, "name": "' + device + b'"}], "traceEvents": '
            b'[{"ph": "X", "cat": "kernel", "name": "' + name + b'", "ts": 1, "dur": 1}]}')
    path = tmp_path / "trace.json"
    path.write_bytes(text)
    with pytest.raises(TraceError) as caught:
        read_trace(path)
    assert caught.value.byte_offset == text.index(b"\xff")
    lenient = read_trace(path, lenient=True)
    assert len(lenient.gpu_activity) == 1
