"""Every public trace next to the repository: estimates, invariants and failure cases."""

from __future__ import annotations

import re

import pytest

import energaizer
from energaizer.analyze.analysis import analyze_trace
from energaizer.analyze.steps import infer_repetition
from energaizer.errors import NotNvidiaTraceError, TraceError
from energaizer.trace import read_trace

pytestmark = pytest.mark.shared_data

NVIDIA_TRACES = [
    "hta/a100pg509_alexnet_small.json.gz",
    "hta/a100pg509_nccl_data_3steps.json.gz",
    "hta/a100pg509_trace_diff_control_6steps_shapes.json.gz",
    "hta/a100pg509_triton_example_tiny.json.gz",
    "hta/a100sxm80_rank0_5steps_shapes.json.gz",
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
_STEP = re.compile(r"^ProfilerStep#\d+$")


def _check_invariants(estimate: energaizer.estimate) -> None:
    class_sum = sum(item.energy_j for item in estimate.by_class)
    assert class_sum + estimate.idle_energy_j == pytest.approx(estimate.energy_j, rel=1e-9, abs=1e-12)
    if estimate.duration_s > 0:
        assert estimate.gpu.idle_power_w - 1e-6 <= estimate.avg_power_w
        assert estimate.avg_power_w <= estimate.gpu.power_limit_w + 1e-6
    assert estimate.busy_s + estimate.idle_s == pytest.approx(estimate.duration_s)


@pytest.mark.parametrize("name", NVIDIA_TRACES)
def test_nvidia_trace_estimate(shared_data, name):
    path = shared_data / "traces" / name
    estimate = energaizer.estimate(trace=path)
    _check_invariants(estimate)
    trace = read_trace(path)
    step_names = {n for n in trace.cpu_ops["name"] if _STEP.match(n)}
    if step_names:
        assert sorted(step.step for step in estimate.steps) == sorted(step_names)
    assert not estimate.gpu.derived_profile


def test_trace_without_device_properties(shared_data):
    path = shared_data / "traces" / "hta" / "nodevprops_sampled_rank0_2steps.json.gz"
    with pytest.raises(TraceError, match="--gpu"):
        energaizer.estimate(trace=path)
    estimate = energaizer.estimate(trace=path, gpu="a100-sxm4-80gb")
    _check_invariants(estimate)
    assert len(estimate.steps) == 2


def test_trace_without_kernels(shared_data):
    with pytest.raises(TraceError, match="no usable GPU kernels"):
        energaizer.estimate(trace=shared_data / "traces" / "hta" / "a100pg509_cupti_flop_counters.json.gz")


def test_amd_trace(shared_data):
    path = shared_data / "traces" / "hta" / "NEGATIVE_amd_mi250_minitoy.json.gz"
    with pytest.raises(NotNvidiaTraceError) as caught:
        energaizer.estimate(trace=path)
    assert caught.value.exit_code == 2
    estimate = energaizer.estimate(trace=path, gpu="a100-sxm4-80gb")
    assert estimate.energy_j > 0


def test_dlrm_ranks_folder_and_archive(shared_data, dlrm_folder):
    from_folder = energaizer.estimate(trace=dlrm_folder)
    assert [part.source["rank"] for part in from_folder.ranks] == list(range(8))
    _check_invariants(from_folder.ranks[0])
    waits_j = sum((from_folder.duration_s - p.duration_s) * p.gpu.idle_power_w
                  for p in from_folder.ranks)
    assert from_folder.energy_j == pytest.approx(
        sum(p.energy_j for p in from_folder.ranks) + waits_j)
    archive = shared_data / "traces" / "param" / "v100sxm32_dlrm_8rank_kineto.tar.gz"
    from_archive = energaizer.estimate(trace=archive)
    assert from_archive.energy_j == pytest.approx(from_folder.energy_j)


@pytest.mark.parametrize(
    "name",
    [
        "kineto/v100dgxs_resnet50_train_bs32_nw0_6steps.pt.trace.json.gz",
        "hta/v100sxm32_ns_resolution_rank0_5steps.json.gz",
        "hta/a100pg509_nccl_data_3steps.json.gz",
    ],
)
def test_inferred_period_matches_profiler_steps(shared_data, name):
    device = analyze_trace(read_trace(shared_data / "traces" / name)).devices[0]
    kernels = device.activity[device.activity["category"] == "kernel"]
    per_step = kernels[kernels["step"] >= 0].groupby("step").size()
    inferred = infer_repetition(device.activity)
    assert inferred.period_kernels == int(per_step.iloc[1])


@pytest.mark.parametrize("name", ["param/rtx2080ti_linear_kineto.json.gz", "param/rtx2080ti_resnet_kineto.json.gz"])
def test_traces_without_markers_get_inferred_steps(shared_data, name):
    estimate = energaizer.estimate(trace=shared_data / "traces" / name)
    assert estimate.source["steps_method"] == "repetition"
    assert len(estimate.steps) >= 2
    assert all(step.inferred for step in estimate.steps)
