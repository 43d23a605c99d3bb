"""Estimating from traces: invariants, GPU matching, folders and failure cases."""

from __future__ import annotations

import pytest
from factories import A100_PROPERTIES, kernel, trace_document, training_steps, write_trace

import energaizer
from energaizer.errors import NotNvidiaTraceError, TraceError


def _estimate(tmp_path, events=None, name="t.json", **kwargs):
    document = kwargs.pop("document", None) or trace_document(events or training_steps(steps=3))
    return energaizer.estimate(trace=write_trace(tmp_path / name, document), **kwargs)


def test_estimate_invariants(tmp_path):
    estimate = _estimate(tmp_path)
    assert estimate.schema == "energaizer.estimate/1"
    class_sum = sum(item.energy_j for item in estimate.by_class)
    assert class_sum + estimate.idle_energy_j == pytest.approx(estimate.energy_j)
    assert estimate.gpu.idle_power_w <= estimate.avg_power_w <= estimate.gpu.power_limit_w
    assert estimate.busy_s + estimate.idle_s == pytest.approx(estimate.duration_s)
    assert len(estimate.steps) == 3
    assert estimate.uncertainty["energy_j_low"] <= estimate.energy_j <= estimate.uncertainty["energy_j_high"]
    assert estimate.gpu.profile == "a100-sxm4-80gb"
    assert estimate.provenance["calibration_kind"] in ("calibrated", "default", "uncalibrated")


def test_estimate_to_dict_contract(tmp_path):
    data = _estimate(tmp_path).to_dict()
    for key in ("schema", "gpu", "source", "energy_j", "duration_s", "avg_power_w", "busy_s",
                "idle_s", "idle_energy_j", "by_class", "steps", "provenance", "uncertainty"):
        assert key in data
    assert set(data["gpu"]) >= {"name", "profile", "clock_mhz", "power_limit_w"}
    assert data["source"]["kind"] == "trace"
    assert set(data["by_class"][0]) == {"op_class", "kernels", "time_s", "energy_j"}
    assert set(data["steps"][0]) >= {"step", "duration_s", "energy_j"}
    assert set(data["provenance"]) >= {"power_model", "calibration", "warnings"}
    assert set(data["uncertainty"]) == {"energy_j_low", "energy_j_high"}


def test_gemm_draws_more_than_memcpy(tmp_path):
    estimate = _estimate(tmp_path)
    power = {item.op_class: item.energy_j / item.time_s for item in estimate.by_class}
    assert power["gemm"] > power["elementwise"] > power["memcpy"]


def test_no_device_properties_needs_gpu(tmp_path):
    document = trace_document(training_steps(steps=2), properties=None)
    with pytest.raises(TraceError) as caught:
        _estimate(tmp_path, document=document)
    assert "--gpu" in str(caught.value)
    estimate = _estimate(tmp_path, document=document, gpu="h100-sxm5-80gb")
    assert estimate.gpu.profile == "h100-sxm5-80gb"


def test_gpu_override_names_both_gpus(tmp_path):
    estimate = _estimate(tmp_path, gpu="v100-sxm2-32gb")
    assert estimate.gpu.profile == "v100-sxm2-32gb"
    assert any("recorded on NVIDIA A100-SXM4-80GB" in warning for warning in estimate.warnings)
    assert estimate.busy_s > _estimate(tmp_path).busy_s


def test_unknown_gpu_gets_derived_profile(tmp_path):
    properties = {"id": 0, "name": "NVIDIA RTX PRO 9999", "totalGlobalMem": 96 * 2**30,
                  "computeMajor": 12, "computeMinor": 0, "numSms": 188}
    document = trace_document(training_steps(steps=2), properties=properties)
    estimate = _estimate(tmp_path, document=document)
    assert estimate.gpu.derived_profile
    assert any("no profile" in warning for warning in estimate.warnings)


def test_amd_trace_rejected_unless_gpu_given(tmp_path):
    properties = {"id": 0, "name": "AMD Instinct MI250X", "totalGlobalMem": 64 * 2**30,
                  "computeMajor": 9, "computeMinor": 0, "numSms": 104}
    events = [kernel("Cijk_Alik_Bljk_SB_MT64x16x32_MI16x16x1", 100.0, 20.0, 1)]
    document = trace_document(events, properties=properties)
    with pytest.raises(NotNvidiaTraceError) as caught:
        _estimate(tmp_path, document=document)
    assert caught.value.exit_code == 2
    assert "not an NVIDIA GPU" in str(caught.value)
    estimate = _estimate(tmp_path, document=document, gpu="a100-sxm4-80gb")
    assert estimate.energy_j > 0


def test_trace_without_gpu_activity(tmp_path):
    from factories import cpu_op

    with pytest.raises(TraceError, match="no usable GPU kernels"):
        _estimate(tmp_path, events=[cpu_op("aten::mm", 10.0, 5.0)])


def test_truncated_trace_is_a_lower_bound(tmp_path):
    import json

    text = json.dumps(trace_document(training_steps(steps=4))).encode()
    path = tmp_path / "cut.json"
    path.write_bytes(text[: int(len(text) * 0.7)])
    estimate = energaizer.estimate(trace=path, lenient=True)
    assert estimate.lower_bound
    assert any("lower bounds" in warning for warning in estimate.warnings)


def _rank_document(rank: int | None):
    distributed = None if rank is None else {"rank": rank, "world_size": 2}
    return trace_document(training_steps(steps=2), properties=A100_PROPERTIES, distributed=distributed)


def test_folder_gives_one_estimate_per_rank(tmp_path):
    folder = tmp_path / "job"
    folder.mkdir()
    write_trace(folder / "a.json", _rank_document(1))
    write_trace(folder / "b.json.gz", _rank_document(0), compress=True)
    (folder / "notes.txt").write_text("not a trace")
    estimate = energaizer.estimate(trace=folder)
    assert [part.source["rank"] for part in estimate.ranks] == [0, 1]
    assert estimate.energy_j == pytest.approx(sum(part.energy_j for part in estimate.ranks))
    class_sum = sum(item.energy_j for item in estimate.by_class)
    assert class_sum + estimate.idle_energy_j == pytest.approx(estimate.energy_j)
    assert estimate.gpu.name.startswith("2 x ")


def test_folder_with_duplicate_rank_names_both_files(tmp_path):
    folder = tmp_path / "job"
    folder.mkdir()
    write_trace(folder / "first.json", _rank_document(0))
    write_trace(folder / "second.json", _rank_document(0))
    with pytest.raises(TraceError) as caught:
        energaizer.estimate(trace=folder)
    assert "first.json" in str(caught.value)
    assert "second.json" in str(caught.value)


def test_folder_without_distributed_info_says_rank(tmp_path):
    folder = tmp_path / "job"
    folder.mkdir()
    write_trace(folder / "worker3.json", _rank_document(None))
    write_trace(folder / "worker5.json", _rank_document(None))
    estimate = energaizer.estimate(trace=folder)
    assert [part.source["rank"] for part in estimate.ranks] == [3, 5]
    assert any("treated as rank 3" in warning for warning in estimate.warnings)


def test_single_file_without_distributed_info_is_rank_zero(tmp_path):
    folder = tmp_path / "job"
    folder.mkdir()
    write_trace(folder / "trace.json", _rank_document(None))
    estimate = energaizer.estimate(trace=folder)
    assert estimate.ranks[0].source["rank"] == 0
    assert any("treated as rank 0" in warning for warning in estimate.warnings)


def test_empty_folder(tmp_path):
    with pytest.raises(TraceError, match="no trace files"):
        energaizer.estimate(trace=tmp_path)


def test_two_sources_rejected(tmp_path):
    with pytest.raises(energaizer.InputError, match="one source"):
        energaizer.estimate(trace=tmp_path / "t.json", model="gpt2")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dtype": "int4"}, "dtype"),
        ({"phase": "serve"}, "phase"),
        ({"attention": "flash"}, "attention"),
        ({"batch": 0}, "batch"),
        ({"seq": -5}, "seq"),
        ({"clock_mhz": -1.0}, "clock_mhz"),
        ({"power_limit_w": 0}, "power_limit_w"),
    ],
)
def test_invalid_options(tmp_path, options, message):
    with pytest.raises(energaizer.InputError, match=message):
        energaizer.estimate(trace=tmp_path / "t.json", **options)


def test_trace_retargeted_to_faster_gpu(tmp_path):
    recorded = _estimate(tmp_path)
    faster = _estimate(tmp_path, gpu="h100-sxm5-80gb")
    assert faster.gpu.profile == "h100-sxm5-80gb"
    assert faster.busy_s < recorded.busy_s
    assert faster.source["recorded_gpu"] == "a100-sxm4-80gb"
    assert any("retargeted" in warning for warning in faster.warnings)


def test_trace_power_limit_caps_average(tmp_path):
    capped = _estimate(tmp_path, power_limit_w=90)
    assert capped.avg_power_w <= 90 + 1e-6
