"""The streaming reader gives the same tables as the whole-file reader."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
from factories import (
    A100_PROPERTIES,
    kernel,
    runtime,
    trace_document,
    training_steps,
    write_trace,
)

from energaizer.errors import TraceError, TruncatedTraceError
from energaizer.trace import read_trace, stream
from energaizer.trace.stream import stream_trace

# Small reads and flushes, so even the small shared traces are cut into many batches.
SMALL = {"read_bytes": 16 << 10, "flush_rows": 1_000}

SHARED_TRACES = [
    "hta/NEGATIVE_amd_mi250_minitoy.json.gz",
    "hta/a100pg509_alexnet_small.json.gz",
    "hta/a100pg509_cupti_flop_counters.json.gz",
    "hta/a100pg509_nccl_data_3steps.json.gz",
    "hta/a100pg509_trace_diff_control_6steps_shapes.json.gz",
    "hta/a100pg509_triton_example_tiny.json.gz",
    "hta/a100sxm80_rank0_5steps_shapes.json.gz",
    "hta/nodevprops_sampled_rank0_2steps.json.gz",
    "hta/v100sxm16_trace_diff_test_6steps_shapes.json.gz",
    "hta/v100sxm32_df_index_resolver_5steps.json.gz",
    "hta/v100sxm32_ns_resolution_rank0_5steps.json.gz",
    "kineto/h100_cudagraph_after_fix_tiny.json",
    "kineto/v100dgxs_resnet50_train_bs32_nw0_6steps.pt.trace.json.gz",
    "param/rtx2080ti_linear_kineto.json.gz",
    "param/rtx2080ti_resnet_kineto.json.gz",
    "tracelens/h100_bert-small_infer.json.gz",
    "tracelens/h100_falconsai_vit_infer.json.gz",
    "tracelens/h100_qwen1.5-0.5b-chat_infer_bf16.json.gz",
]


def _assert_same_trace(streamed, whole) -> None:
    assert streamed is not None
    pd.testing.assert_frame_equal(streamed.gpu_activity, whole.gpu_activity)
    pd.testing.assert_frame_equal(streamed.runtime, whole.runtime)
    pd.testing.assert_frame_equal(streamed.cpu_ops, whole.cpu_ops)
    assert streamed.metadata == whole.metadata
    assert streamed.form == whole.form
    assert streamed.set_aside_activity == whole.set_aside_activity
    assert streamed.unusable_events == whole.unusable_events
    assert streamed.warnings == whole.warnings


@pytest.mark.shared_data
@pytest.mark.parametrize("name", SHARED_TRACES)
def test_stream_matches_whole_file(shared_data, name):
    path = shared_data / "traces" / name
    _assert_same_trace(stream_trace(path, **SMALL), read_trace(path))


def _steps_document(**options) -> dict:
    return trace_document(training_steps(steps=4), **options)


def test_plain_and_gzip_give_same_tables(tmp_path):
    document = _steps_document()
    plain = write_trace(tmp_path / "t.json", document)
    packed = write_trace(tmp_path / "t.json.gz", document, compress=True)
    _assert_same_trace(stream_trace(plain, **SMALL), read_trace(plain))
    _assert_same_trace(stream_trace(packed, **SMALL), read_trace(plain))


def test_concatenated_gzip_members(tmp_path):
    text = json.dumps(_steps_document()).encode()
    path = tmp_path / "members.json.gz"
    middle = len(text) // 2
    path.write_bytes(gzip.compress(text[:middle]) + gzip.compress(text[middle:]))
    _assert_same_trace(stream_trace(path, **SMALL), read_trace(path))


def test_metadata_after_events_and_in_tail(tmp_path):
    events = training_steps(steps=2)
    second = dict(A100_PROPERTIES, id=1)
    # Two deviceProperties objects after the array put a `},{` in the tail.
    text = (
        '{"schemaVersion": 1, "traceEvents": '
        + json.dumps(events)
        + ', "deviceProperties": '
        + json.dumps([A100_PROPERTIES, second])
        + ', "distributedInfo": {"rank": 3}}'
    )
    path = tmp_path / "late.json"
    path.write_text(text)
    streamed = stream_trace(path, **SMALL)
    _assert_same_trace(streamed, read_trace(path))
    assert streamed.rank == 3
    assert len(streamed.device_properties) == 2


def test_bare_array_form(tmp_path):
    events = training_steps(steps=2)
    for event in events:
        event["pid"] = "CPU functions"
    path = tmp_path / "array.json"
    path.write_text(json.dumps(events, indent=1))
    streamed = stream_trace(path, **SMALL)
    _assert_same_trace(streamed, read_trace(path))
    assert streamed.form == "array"


def test_boundary_inside_strings_and_args(tmp_path):
    tricky = kernel('odd"},{"name": "x', 5000.0, 1.0, 77)
    tricky["args"]["nested"] = [{"a": 1}, {"b": 2}]
    events = training_steps(steps=2) + [tricky, runtime("cudaLaunchKernel", 4990.0, 2.0, 77)]
    path = write_trace(tmp_path / "tricky.json", trace_document(events))
    streamed = stream_trace(path, read_bytes=64, flush_rows=2)
    _assert_same_trace(streamed, read_trace(path))
    assert 'odd"},{"name": "x' in set(streamed.gpu_activity["name"])


def test_huge_integers_stay_exact(tmp_path):
    event = kernel("k", 1000.0, 5.0, 9007199254740993)
    event["args"]["External id"] = 18446744073709551615
    path = write_trace(tmp_path / "ids.json", trace_document([event]))
    streamed = stream_trace(path, **SMALL)
    _assert_same_trace(streamed, read_trace(path))
    assert streamed.gpu_activity["correlation"].iloc[0] == 9007199254740993
    assert streamed.gpu_activity["external_id"].iloc[0] == 18446744073709551615


def test_empty_event_array(tmp_path):
    path = write_trace(tmp_path / "empty.json", trace_document([]))
    streamed = stream_trace(path, **SMALL)
    _assert_same_trace(streamed, read_trace(path))
    assert streamed.gpu_activity.empty


def _broken_trace(tmp_path: Path) -> Path:
    text = json.dumps(_steps_document())
    broken = text.replace('"tid": 7', 'tid": 7', 1)
    assert broken != text
    path = tmp_path / "broken.json"
    path.write_text(broken)
    return path


def test_broken_event_falls_back(tmp_path):
    assert stream_trace(_broken_trace(tmp_path), **SMALL) is None


def test_truncated_file_falls_back(tmp_path):
    text = json.dumps(_steps_document()).encode()
    plain = tmp_path / "cut.json"
    plain.write_bytes(text[: len(text) * 2 // 3])
    packed = tmp_path / "cut.json.gz"
    packed.write_bytes(gzip.compress(text)[:-200])
    assert stream_trace(plain, **SMALL) is None
    assert stream_trace(packed, **SMALL) is None


@pytest.fixture
def stream_everything(monkeypatch):
    monkeypatch.setattr(stream, "STREAM_THRESHOLD_BYTES", 0)
    monkeypatch.setattr(stream, "READ_BYTES", 4 << 10)


def test_read_trace_streams_above_threshold(tmp_path, stream_everything, monkeypatch):
    path = write_trace(tmp_path / "t.json", _steps_document())
    calls = []
    original = stream.stream_trace
    monkeypatch.setattr(stream, "stream_trace", lambda *a, **k: calls.append(a) or original(*a, **k))
    trace = read_trace(path)
    assert len(calls) == 1
    assert len(trace.kernels) > 0


def test_read_trace_strict_errors_kept(tmp_path, stream_everything):
    with pytest.raises(TraceError) as caught:
        read_trace(_broken_trace(tmp_path))
    assert caught.value.byte_offset is not None
    assert caught.value.event_index is not None
    assert "--lenient" in str(caught.value)


def test_read_trace_truncation_message_kept(tmp_path, stream_everything):
    text = json.dumps(_steps_document()).encode()
    path = tmp_path / "cut.json"
    path.write_bytes(text[: len(text) * 2 // 3])
    with pytest.raises(TruncatedTraceError, match="truncated after"):
        read_trace(path)
    lenient = read_trace(path, lenient=True)
    assert lenient.report.truncated


def test_progress_reports_bytes(tmp_path):
    path = write_trace(tmp_path / "t.json", _steps_document())
    seen: list[tuple[int, int]] = []
    stream_trace(path, progress=lambda done, total: seen.append((done, total)), **SMALL)
    assert seen
    assert seen[-1][0] == seen[-1][1] == path.stat().st_size
