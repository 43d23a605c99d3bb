"""Linking kernels to launches and ops, profiler steps and inferred repetition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from factories import (
    cpu_op,
    kernel,
    runtime,
    trace_document,
    training_steps,
    write_trace,
)

from energaizer.analyze.analysis import analyze_trace, busy_time_us
from energaizer.analyze.steps import find_period
from energaizer.trace import read_trace


def _analyze(tmp_path, events, **document):
    return analyze_trace(read_trace(write_trace(tmp_path / "t.json", trace_document(events, **document))))


def test_launch_calls_by_other_names_link(tmp_path):
    events = [
        cpu_op("aten::mm", 100.0, 50.0, dims=[[64, 64], [64, 64]], types=["float", "float"]),
        runtime("cuLaunchKernelEx", 110.0, 5.0, 11, category="cuda_driver"),
        kernel("volta_sgemm_128x64_nn", 130.0, 10.0, 11),
        cpu_op("graph_replay", 200.0, 50.0),
        runtime("cudaGraphLaunch", 210.0, 5.0, 12),
        kernel("graph_k0", 230.0, 10.0, 12),
        kernel("graph_k1", 241.0, 10.0, 12),
        kernel("graph_k2", 252.0, 10.0, 12),
    ]
    analysis = _analyze(tmp_path, events)
    activity = analysis.devices[0].activity.set_index("name")
    assert activity.loc["volta_sgemm_128x64_nn", "cpu_op"] == "aten::mm"
    assert activity.loc["volta_sgemm_128x64_nn", "input_dims"] == "[[64,64],[64,64]]"
    for name in ("graph_k0", "graph_k1", "graph_k2"):
        assert activity.loc[name, "cpu_op"] == "graph_replay"
    assert analysis.launch_link_share == 1.0


def test_no_memcpy_or_memset_gives_empty_classes(tmp_path):
    events = [runtime("cudaLaunchKernel", 10.0, 2.0, 1), kernel("volta_sgemm_128x64_nn", 20.0, 5.0, 1)]
    analysis = _analyze(tmp_path, events)
    classes = set(analysis.devices[0].activity["op_class"])
    assert classes == {"gemm"}


def test_link_through_kernel_external_id(tmp_path):
    events = [
        cpu_op("aten::addmm", 100.0, 50.0, tid=1, external_id=77,
               dims=[[8], [4, 16], [16, 8]], types=["float"] * 3),
        runtime("cudaLaunchKernel", 110.0, 5.0, 5, tid=2, external_id=77),
        kernel("volta_sgemm_32x32_sliced1x4_tn", 130.0, 10.0, 5),
    ]
    analysis = _analyze(tmp_path, events)
    assert analysis.devices[0].activity["cpu_op"][0] == "aten::addmm"


def test_profiler_steps_one_window_each(tmp_path):
    analysis = _analyze(tmp_path, training_steps(steps=4))
    steps = analysis.devices[0].steps
    assert steps.method == "profiler step"
    assert [w.step for w in steps.windows] == [f"ProfilerStep#{i}" for i in range(1, 5)]
    assert (analysis.devices[0].activity["step"] >= 0).all()
    assert np.bincount(analysis.devices[0].activity["step"]).tolist() == [3, 3, 3, 3]


def test_gpu_annotation_steps_preferred(tmp_path):
    events = training_steps(steps=2)
    for number, start in ((1, 1_000_030.0), (2, 1_001_030.0)):
        events.append(dict(cpu_op(f"ProfilerStep#{number}", start, 500.0, pid=0, tid=7,
                                  category="gpu_user_annotation")))
    analysis = _analyze(tmp_path, events)
    steps = analysis.devices[0].steps
    assert steps.method == "gpu annotation"
    assert steps.windows[0].start_us == 1_000_030.0


def test_repetition_found_without_markers(tmp_path):
    events = [e for e in training_steps(steps=6) if not e["name"].startswith("ProfilerStep")]
    analysis = _analyze(tmp_path, events)
    steps = analysis.devices[0].steps
    assert steps.method == "repetition"
    assert steps.period_kernels == 2
    assert len(steps.windows) >= 5
    assert all(window.inferred for window in steps.windows)


@pytest.mark.parametrize("period", [1, 3, 7, 50])
def test_find_period(period):
    rng = np.random.default_rng(period)
    block = rng.integers(0, 1000, size=period)
    if period > 1:
        block[0] = 5000
    codes = np.concatenate([np.array([9001, 9002]), np.tile(block, 6)])
    assert find_period(codes) == period if period > 1 else find_period(codes) in (None, 1)


def test_no_period_in_random_sequence():
    codes = np.random.default_rng(0).permutation(500)
    assert find_period(codes) is None


def test_busy_time_is_union_of_overlaps():
    frame = pd.DataFrame({"ts_us": [0.0, 5.0, 20.0, 21.0], "dur_us": [10.0, 10.0, 2.0, 0.5]})
    assert busy_time_us(frame) == pytest.approx(17.0)


def test_signatures_fold_identical_launches(tmp_path):
    analysis = _analyze(tmp_path, training_steps(steps=5))
    signatures = analysis.devices[0].signatures
    assert len(signatures) == 3
    assert signatures["count"].tolist() == [5, 5, 5]
