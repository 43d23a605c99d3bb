"""Broken, odd and extreme trace files: each gets a precise error or a lenient read."""

from __future__ import annotations

import gzip
import json

import pytest
from factories import kernel, trace_document, write_trace

from energaizer.errors import TraceError, TruncatedTraceError
from energaizer.trace import read_trace
from energaizer.trace.decode import decode_trace
from energaizer.trace.scan import scan_events
from energaizer.trace.tables import TableBuilder

FOUR_EVENTS = [
    kernel("k0", 1000.0, 10.0, 1),
    kernel("k1", 1020.0, 10.0, 2),
    kernel("k2", 1040.0, 10.0, 3),
    kernel("k3", 1060.0, 10.0, 4),
]


def _array_bytes(events: list[dict]) -> list[bytes]:
    return [json.dumps(event).encode() for event in events]


def _join(pieces: list[bytes]) -> bytes:
    return b"[\n" + b",\n".join(pieces) + b"\n]"


def _break_key_quote(piece: bytes) -> bytes:
    broken = piece.replace(b'"tid": 7', b'tid": 7', 1)
    assert broken != piece
    return broken


# Broken object in otherwise valid JSON.

@pytest.mark.parametrize("broken_index", [0, 2, 3])
def test_broken_object_strict_names_offset_and_index(tmp_path, broken_index):
    pieces = _array_bytes(FOUR_EVENTS)
    pieces[broken_index] = _break_key_quote(pieces[broken_index])
    path = tmp_path / "broken.json"
    path.write_bytes(_join(pieces))
    with pytest.raises(TraceError) as caught:
        read_trace(path)
    assert caught.value.event_index == broken_index
    assert caught.value.byte_offset is not None
    assert f"event {broken_index}" in str(caught.value)
    assert "--lenient" in str(caught.value)


@pytest.mark.parametrize("form", ["array", "object"])
def test_stray_bracket_before_first_event_lenient(tmp_path, form):
    body = b"[]" + b",\n".join(_array_bytes(FOUR_EVENTS)) + b"\n]"
    text = body if form == "array" else b'{"traceEvents": ' + body + b"}"
    path = tmp_path / "stray.json"
    path.write_bytes(text)
    with pytest.raises(TraceError):
        read_trace(path)
    trace = read_trace(path, lenient=True)
    assert list(trace.gpu_activity["name"]) == ["k0", "k1", "k2", "k3"]


@pytest.mark.parametrize("text", [b'{"traceEvents": [ ], "schemaVersion": 1}', b"[ ]\n"])
def test_scanner_reads_empty_event_array(text):
    scanned = scan_events(text)
    assert scanned.events == []
    assert scanned.skipped_events == 0
    assert not scanned.truncated
    assert scanned.metadata == ({"schemaVersion": 1} if text.startswith(b"{") else {})


@pytest.mark.parametrize("broken_index", [0, 2, 3])
def test_broken_object_lenient_keeps_the_rest(tmp_path, broken_index):
    pieces = _array_bytes(FOUR_EVENTS)
    pieces[broken_index] = _break_key_quote(pieces[broken_index])
    path = tmp_path / "broken.json"
    path.write_bytes(_join(pieces))
    trace = read_trace(path, lenient=True)
    kept = sorted(trace.gpu_activity["name"])
    assert kept == sorted(f"k{i}" for i in range(4) if i != broken_index)
    assert trace.report.skipped_events == 1
    assert any("1 events could not be parsed" in w for w in trace.warnings)


def test_two_broken_objects_in_object_form(tmp_path):
    pieces = _array_bytes(FOUR_EVENTS)
    pieces[1] = _break_key_quote(pieces[1])
    pieces[2] = pieces[2].replace(b'"dur": 10.0', b'"dur": 10.0,,', 1)
    text = b'{"schemaVersion": 1, "traceEvents": ' + _join(pieces) + b', "deviceProperties": [{"id": 0, "name": "NVIDIA A100-SXM4-80GB"}]}'
    path = tmp_path / "two_broken.json"
    path.write_bytes(text)
    trace = read_trace(path, lenient=True)
    assert sorted(trace.gpu_activity["name"]) == ["k0", "k3"]
    assert trace.report.skipped_events == 2
    assert trace.device_properties[0]["name"] == "NVIDIA A100-SXM4-80GB"


def test_nested_args_boundary_is_not_an_event_break(tmp_path):
    events = list(FOUR_EVENTS)
    events[1] = dict(events[1], args=dict(events[1]["args"], extra=[{"a": 1}, {"b": 2}]))
    pieces = _array_bytes(events)
    pieces[3] = _break_key_quote(pieces[3])
    path = tmp_path / "nested.json"
    path.write_bytes(_join(pieces))
    trace = read_trace(path, lenient=True)
    assert sorted(trace.gpu_activity["name"]) == ["k0", "k1", "k2"]
    assert trace.report.skipped_events == 1


# Unescaped characters in names.

def _with_name(name_bytes: bytes) -> bytes:
    pieces = _array_bytes(FOUR_EVENTS)
    pieces[1] = pieces[1].replace(b'"name": "k1"', b'"name": "' + name_bytes + b'"', 1)
    return _join(pieces)


def test_raw_quote_and_newline_in_name(tmp_path):
    path = tmp_path / "quote.json"
    path.write_bytes(_with_name(b'k1 "quoted\nname'))
    with pytest.raises(TraceError) as caught:
        read_trace(path)
    assert caught.value.event_index == 1
    trace = read_trace(path, lenient=True)
    assert sorted(trace.gpu_activity["name"]) == ["k0", "k2", "k3"]
    assert trace.report.skipped_events == 1


def test_control_byte_in_name_is_repaired(tmp_path):
    path = tmp_path / "control.json"
    path.write_bytes(_with_name(b"k1\x01x"))
    with pytest.raises(TraceError) as caught:
        read_trace(path)
    assert caught.value.byte_offset is not None
    assert caught.value.event_index == 1
    trace = read_trace(path, lenient=True)
    names = sorted(trace.gpu_activity["name"])
    assert names == ["k0", "k1 x", "k2", "k3"]
    assert trace.report.repaired_events == 1
    assert trace.report.replaced_bytes == 1


def test_invalid_utf8_in_name_is_replaced_and_counted(tmp_path):
    path = tmp_path / "utf8.json"
    path.write_bytes(_with_name(b"k1\xffx"))
    with pytest.raises(TraceError) as caught:
        read_trace(path)
    assert caught.value.byte_offset is not None
    assert caught.value.event_index == 1
    assert "UTF-8" in str(caught.value)
    trace = read_trace(path, lenient=True)
    assert "k1\ufffdx" in set(trace.gpu_activity["name"])
    assert len(trace.gpu_activity) == 4
    assert trace.report.replaced_bytes == 1


# Integers beyond 64 bits and beyond float precision.

BIG_CORRELATION = 9007199254740993  # 2^53 + 1: a float would read it as 2^53
COMMS_ID = 18446744073709551615  # 2^64 - 1


def _big_id_events() -> list[dict]:
    from factories import runtime

    return [
        runtime("cudaMemcpyAsync", 100.0, 5.0, BIG_CORRELATION - 1),
        runtime("cudaLaunchKernel", 110.0, 5.0, BIG_CORRELATION),
        dict(kernel("ncclKernel_AllReduce_RING_LL_Sum_float", 120.0, 10.0, BIG_CORRELATION),
             args={"correlation": BIG_CORRELATION, "Comms Id": COMMS_ID, "device": 0,
                   "stream": 7, "grid": [1, 1, 1], "block": [512, 1, 1]}),
    ]


@pytest.mark.parametrize("lenient_path", [False, True])
def test_big_integers_stay_exact(tmp_path, lenient_path):
    data = json.dumps(trace_document(_big_id_events())).encode()
    if lenient_path:
        data = data.replace(b'"schemaVersion": 1', b'"schemaVersion": 1,,', 1)
    decoded = decode_trace(data, "big.json", lenient=lenient_path)
    assert decoded.report.lenient == lenient_path
    args = json.loads(bytes(decoded.events[2].args))
    assert args["Comms Id"] == COMMS_ID
    builder = TableBuilder()
    builder.add_all(decoded.events)
    gpu, _ = builder.gpu_frame()
    assert int(gpu["correlation"][0]) == BIG_CORRELATION


def test_big_correlation_links_exactly(tmp_path):
    from energaizer.analyze.link import link_activity
    from energaizer.analyze.nesting import nest_operators

    trace = read_trace(write_trace(tmp_path / "big.json", trace_document(_big_id_events())))
    nesting = nest_operators(trace.cpu_ops, trace.runtime)
    links = link_activity(trace.gpu_activity, trace.runtime, trace.cpu_ops, nesting)
    launch = trace.runtime["name"][links.runtime_index[0]]
    assert launch == "cudaLaunchKernel"


def test_id_beyond_int64_kept_as_python_int(tmp_path):
    events = [kernel("k", 100.0, 10.0, COMMS_ID)]
    trace = read_trace(write_trace(tmp_path / "huge.json", trace_document(events)))
    assert trace.gpu_activity["correlation"][0] == COMMS_ID


# Compressed and plain files.

def test_plain_and_gzip_read_the_same(tmp_path):
    from factories import training_steps

    document = trace_document(training_steps(steps=50))
    plain = read_trace(write_trace(tmp_path / "t.json", document))
    packed = read_trace(write_trace(tmp_path / "t.json.gz", document, compress=True))
    assert plain.gpu_activity.equals(packed.gpu_activity)
    assert plain.cpu_ops.equals(packed.cpu_ops)
    assert plain.runtime.equals(packed.runtime)


# Truncated traces.

def _five_event_bytes() -> tuple[bytes, list[int]]:
    events = [kernel(f"k{i}", 1000.0 + 20 * i, 10.0, i + 1) for i in range(5)]
    pieces = _array_bytes(events)
    text = b'{"traceEvents": [' + b", ".join(pieces) + b"]}"
    ends = []
    offset = len(b'{"traceEvents": [')
    for piece in pieces:
        offset += len(piece)
        ends.append(offset)
        offset += 2
    return text, ends


@pytest.mark.parametrize(
    ("cut", "complete"),
    [("after_fifth", 5), ("inside_fifth", 4), ("inside_string", 4), ("after_comma", 4)],
)
def test_truncated_trace(tmp_path, cut, complete):
    text, ends = _five_event_bytes()
    fifth_start = text.index(b'{"ph"', ends[3])
    cuts = {
        "after_fifth": ends[4],
        "inside_fifth": fifth_start + 30,
        "inside_string": text.index(b'"k4"') + 2,
        "after_comma": ends[3] + 1,
    }
    path = tmp_path / "cut.json"
    path.write_bytes(text[: cuts[cut]])
    with pytest.raises(TruncatedTraceError) as caught:
        read_trace(path)
    assert f"truncated after {complete} complete events" in str(caught.value)
    assert caught.value.complete_events == complete
    trace = read_trace(path, lenient=True)
    assert len(trace.gpu_activity) == complete
    assert trace.report.truncated


def test_truncated_gzip_stream(tmp_path):
    from factories import training_steps

    packed = gzip.compress(json.dumps(trace_document(training_steps(steps=200))).encode())
    path = tmp_path / "cut.json.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(TruncatedTraceError):
        read_trace(path)
    trace = read_trace(path, lenient=True)
    assert trace.report.truncated
    assert 0 < len(trace.gpu_activity) < 600


# Top-level forms and string pids.

def test_bare_array_with_string_pids(tmp_path):
    events = [
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": "CPU functions", "tid": "1",
         "ts": 100, "dur": 50, "args": {}},
        kernel("volta_sgemm_128x64_nn", 120.0, 20.0, 1),
    ]
    trace = read_trace(write_trace(tmp_path / "bare.json", events))
    assert trace.form == "array"
    assert trace.cpu_ops["pid"][0] == "CPU functions"
    assert trace.cpu_ops["tid"][0] == 1
    assert len(trace.gpu_activity) == 1
    assert trace.device_properties == []


def test_object_form_reads_metadata_after_events(tmp_path):
    text = json.dumps({"traceEvents": FOUR_EVENTS, "deviceProperties": [{"id": 0, "name": "X"}],
                       "distributedInfo": {"rank": 3}})
    path = tmp_path / "late.json"
    path.write_text(text)
    trace = read_trace(path)
    assert trace.device_properties == [{"id": 0, "name": "X"}]
    assert trace.rank == 3


def test_timestamps_as_numeric_strings(tmp_path):
    events = [dict(kernel("k", 0, 0, 1), ts="1000.5", dur="20")]
    trace = read_trace(write_trace(tmp_path / "strings.json", trace_document(events)))
    assert trace.gpu_activity["ts_us"][0] == 1000.5
    assert trace.gpu_activity["dur_us"][0] == 20.0


def test_events_with_unusable_fields_are_counted(tmp_path):
    events = [
        kernel("good", 1000.0, 10.0, 1),
        dict(kernel("bad ts", 0, 0, 2), ts="soon"),
        dict(kernel("bad dur", 1010.0, 0, 3), dur=-5),
        dict(kernel("no name", 1020.0, 1.0, 4), name=None),
        dict(kernel("bad args", 1030.0, 1.0, 5), args=[1, 2]),
    ]
    trace = read_trace(write_trace(tmp_path / "odd.json", trace_document(events)))
    assert sorted(trace.gpu_activity["name"]) == ["bad args", "good"]
    assert trace.unusable_events == 3


# Kernels without timing.

def test_zero_timed_kernel_set_aside(tmp_path):
    events = [
        kernel("k0", 1.6e15, 10.0, 1),
        kernel("k1", 1.6e15 + 20, 10.0, 2),
        kernel("k2", 1.6e15 + 40, 10.0, 3),
        kernel("k_zero", 0, 0, 4),
        {"ph": "f", "id": 4, "pid": 0, "tid": 7, "ts": 0, "cat": "ac2g", "name": "ac2g", "bp": "e"},
    ]
    trace = read_trace(write_trace(tmp_path / "zero.json", trace_document(events)))
    assert trace.set_aside_activity == 1
    assert "k_zero" not in set(trace.gpu_activity["name"])
    span = (trace.gpu_activity["ts_us"] + trace.gpu_activity["dur_us"]).max() - trace.gpu_activity["ts_us"].min()
    assert span == pytest.approx(50.0)
    assert any("left out" in warning for warning in trace.warnings)


def test_kernel_a_day_away_is_set_aside(tmp_path):
    events = [kernel("k0", 1.6e15, 10.0, 1), kernel("k1", 1.6e15 + 50, 10.0, 2),
              kernel("k_far", 1.6e15 - 3e11, 10.0, 3)]
    trace = read_trace(write_trace(tmp_path / "far.json", trace_document(events)))
    assert trace.set_aside_activity == 1


# Files that are not traces at all.

@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"hello world", "not JSON"),
        (b"\x89PNG\r\n\x1a\n", "not JSON"),
        (b'{"foo": 1}', "no 'traceEvents'"),
        (b'[{"ph": "X", "na', "truncated"),
        (b"[1, 2]", "event 0"),
    ],
)
def test_not_a_trace(tmp_path, content, expected):
    path = tmp_path / "x.json"
    path.write_bytes(content)
    with pytest.raises(TraceError) as caught:
        read_trace(path)
    assert expected in str(caught.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(TraceError, match="not found"):
        read_trace(tmp_path / "missing.json")
    with pytest.raises(TraceError, match="folder"):
        read_trace(tmp_path)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "bad.json.gz"
    path.write_bytes(b"\x1f\x8b" + b"\x00" * 40)
    with pytest.raises(TraceError, match="gzip"):
        read_trace(path)
