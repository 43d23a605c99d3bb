"""Model captures on the meta device: op shapes, FLOPs, phases, templates and errors.

Reference FLOPs per image count a multiply-add as two FLOPs. ResNet-50 at 224x224 runs
about 4.1 G multiply-adds, the commonly quoted figure. ViT-L/16 at 224x224 runs about
61.6 G: 24 layers x 197 tokens x (12 x 1024^2 weights + 2 x 197 x 1024 in attention),
plus 196 x 768 x 1024 in the patch embedding.
"""

from __future__ import annotations

import builtins
import dataclasses
import importlib.metadata
import json
from collections import Counter

import pytest

from energaizer.analyze.opclass import OpClass
from energaizer.errors import InputError, ProfileError
from energaizer.workload import aten, capture, templates
from energaizer.workload.capture import capture_model
from energaizer.workload.presets import list_presets, preset_metadata

pytest.importorskip("transformers")

GPT2_LAYERS = 12


def gemms(workload) -> list[dict]:
    return [op.geometry for op in workload.ops if op.op_class is OpClass.GEMM]


def of_class(workload, op_class: OpClass) -> list:
    return [op for op in workload.ops if op.op_class is op_class]


def flops_of(workload, phase: str | None = None, op_class: OpClass | None = None) -> float:
    return sum(op.flops for op in workload.ops
               if (phase is None or op.phase == phase)
               and (op_class is None or op.op_class is op_class))


def direct_capture(name, batch, seq, phase, attention="default"):
    """The ops of a capture at exactly this shape, bypassing templates."""
    request = capture._make_request(name, "bf16", phase, attention)
    recorded = capture._runner_for(request).capture(batch, seq, phase)
    return aten.build_ops(recorded.specs)


@pytest.fixture(scope="module")
def gpt2_prefill():
    return capture_model("gpt2", batch=2, seq=64, phase="prefill")


def test_gpt2_prefill_layer_gemms(gpt2_prefill):
    tokens = 2 * 64
    shapes = Counter((g["m"], g["n"], g["k"], g["batch"]) for g in gemms(gpt2_prefill))
    assert shapes[(tokens, 2304, 768, 1)] == GPT2_LAYERS  # fused q, k, v projection
    assert shapes[(tokens, 768, 768, 1)] == GPT2_LAYERS  # attention output projection
    assert shapes[(tokens, 3072, 768, 1)] == GPT2_LAYERS  # MLP up
    assert shapes[(tokens, 768, 3072, 1)] == GPT2_LAYERS  # MLP down


def test_gpt2_prefill_lm_head_on_last_token(gpt2_prefill):
    last = gemms(gpt2_prefill)[-1]
    assert (last["m"], last["n"], last["k"]) == (2, 50257, 768)
    assert len(gemms(gpt2_prefill)) == 4 * GPT2_LAYERS + 1


def test_gpt2_prefill_fused_causal_attention(gpt2_prefill):
    attention = of_class(gpt2_prefill, OpClass.ATTENTION)
    assert len(attention) == GPT2_LAYERS
    assert attention[0].geometry == {"batch": 2, "heads": 12, "kv_heads": 12, "query_len": 64,
                                     "key_len": 64, "head_dim": 64, "causal": True}
    assert of_class(gpt2_prefill, OpClass.SOFTMAX) == []


def test_one_op_per_launch(gpt2_prefill):
    assert all(op.count == 1 for op in gpt2_prefill.ops)
    assert {op.phase for op in gpt2_prefill.ops} == {"prefill"}
    assert gpt2_prefill.eager_launches is True
    assert gpt2_prefill.source["unmapped_ops"] == {}


def test_llama_forward_flops_per_token():
    workload = capture_model("llama-3.1-8b", batch=1, seq=1024, phase="forward")
    parameters = preset_metadata("llama-3.1-8b")["parameters"]
    tokens = 1024
    assert workload.flops == pytest.approx(2 * parameters * tokens, rel=0.15)
    # Every weight but the embedding table and the RMSNorm scales (two per layer and a
    # final one) is one multiply-add per token.
    embedding_table = 128256 * 4096
    norm_scales = (2 * 32 + 1) * 4096
    matrix_weights = parameters - embedding_table - norm_scales
    gemm_flops = flops_of(workload, op_class=OpClass.GEMM)
    assert gemm_flops == 2 * matrix_weights * tokens


def test_llama_decode_attends_to_cache():
    workload = capture_model("llama-3.1-8b", batch=4, seq=500, phase="decode")
    attention = of_class(workload, OpClass.ATTENTION)
    assert len(attention) == 32
    for op in attention:
        assert op.geometry["query_len"] == 1
        assert op.geometry["key_len"] == 501
        assert (op.geometry["heads"], op.geometry["kv_heads"]) == (32, 8)
        assert op.geometry["causal"] is False
    assert {op.phase for op in workload.ops} == {"decode"}
    assert gemms(workload)[0]["m"] == 4


def test_gpt2_decode_attends_to_cache():
    workload = capture_model("gpt2", batch=3, seq=100, phase="decode")
    attention = of_class(workload, OpClass.ATTENTION)
    assert len(attention) == GPT2_LAYERS
    assert {(op.geometry["query_len"], op.geometry["key_len"]) for op in attention} == {(1, 101)}


@pytest.fixture(scope="module")
def gpt2_train():
    return capture_model("gpt2", batch=2, seq=64, phase="train")


def test_train_has_three_phases(gpt2_train):
    assert {op.phase for op in gpt2_train.ops} == {"forward", "backward", "optimizer"}
    assert of_class(gpt2_train, OpClass.ATTENTION)[-1].phase == "backward"


def test_train_flops_about_three_forwards(gpt2_train):
    forward = capture_model("gpt2", batch=2, seq=64, phase="forward")
    assert gpt2_train.flops == pytest.approx(3 * forward.flops, rel=0.15)
    forward_gemm = flops_of(gpt2_train, "forward", OpClass.GEMM)
    backward_gemm = flops_of(gpt2_train, "backward", OpClass.GEMM)
    assert backward_gemm == pytest.approx(2 * forward_gemm, rel=0.02)


def test_optimizer_sweeps_every_parameter(gpt2_train):
    parameters = preset_metadata("gpt2")["parameters"]
    optimizer = [op for op in gpt2_train.ops if op.phase == "optimizer"]
    assert {op.op_class for op in optimizer} == {OpClass.ELEMENTWISE}
    swept = sum(op.geometry["elements"] for op in optimizer)
    # AdamW with foreach=True runs 8 elementwise passes over the parameters:
    # lerp, mul, addcmul, sqrt, div, add (eps), mul (weight decay), addcdiv.
    assert swept == 8 * parameters


def test_eager_attention_is_gemm_and_softmax():
    workload = capture_model("gpt2", batch=2, seq=96, phase="prefill", attention="eager")
    assert of_class(workload, OpClass.ATTENTION) == []
    assert len(of_class(workload, OpClass.SOFTMAX)) == GPT2_LAYERS
    shapes = Counter((g["m"], g["n"], g["k"], g["batch"]) for g in gemms(workload))
    assert shapes[(96, 96, 64, 24)] == GPT2_LAYERS  # scores Q K^T, per sequence and head
    assert shapes[(96, 64, 96, 24)] == GPT2_LAYERS  # probabilities times V
    assert workload.source["attention_implementation"] == "eager"


def test_resnet50_flops_per_image():
    workload = capture_model("resnet-50", batch=2, seq=1, phase="forward")
    assert workload.flops / 2 == pytest.approx(8.2e9, rel=0.15)
    assert len(of_class(workload, OpClass.CONVOLUTION)) == 53
    assert workload.source["seq"] is None
    assert "ignored" in workload.source["note"]
    assert workload.source["image_size"] == [224, 224]


def test_vit_large_flops_per_image():
    workload = capture_model("vit-large", batch=2, seq=1, phase="forward")
    assert workload.flops / 2 == pytest.approx(2 * 61.6e9, rel=0.15)


@pytest.mark.parametrize("name, phase, attention, batch, seq", [
    ("gpt2", "prefill", "default", 3, 129),
    ("gpt2", "prefill", "eager", 1, 77),
    ("gpt2", "decode", "default", 1, 300),
    ("gpt2", "train", "default", 2, 50),
    ("bert-base", "forward", "default", 5, 200),
    ("llama-3.1-8b", "decode", "default", 2, 700),
    ("resnet-50", "train", "default", 3, 1),
])
def test_template_matches_direct_capture(name, phase, attention, batch, seq):
    templated = capture_model(name, batch=batch, seq=seq, phase=phase, attention=attention)
    assert templated.source["capture"] == "template"
    direct = direct_capture(name, batch, seq, phase, attention)
    assert len(templated.ops) == len(direct)
    sized = [dataclasses.replace(op, cpu_calls=0, module_calls=0) for op in templated.ops]
    expected = [dataclasses.replace(op, cpu_calls=0, module_calls=0) for op in direct]
    mismatches = [i for i, (a, b) in enumerate(zip(sized, expected)) if a != b]
    assert mismatches == []
    # Call counts are kept at the larger of the two probes' counts, not fitted.
    drift = [abs(a.cpu_calls - b.cpu_calls) for a, b in zip(templated.ops, direct)]
    assert max(drift) <= 2


def test_template_file_skips_model_build():
    capture_model("gpt2", batch=4, seq=32, phase="prefill")
    capture.clear_memory_cache()
    workload = capture_model("gpt2", batch=5, seq=40, phase="prefill")
    assert workload.source["capture"] == "template"
    assert capture._RUNNERS == {}


def test_corrupt_template_file_is_rewritten(template_cache):
    config = {"model_type": "gpt2", "n_layer": 1, "n_embd": 64, "n_head": 2,
              "vocab_size": 100, "architectures": ["GPT2LMHeadModel"]}
    first = capture_model(config, batch=2, seq=16, phase="forward")
    request = capture._make_request(config, "bf16", "forward", "default")
    path = templates._template_path(request.template_key("multi"))
    path.write_text("{not json")
    capture.clear_memory_cache()
    again = capture_model(config, batch=2, seq=16, phase="forward")
    assert again.ops == first.ops
    assert json.loads(path.read_text())["key"] == request.template_key("multi")


def test_missing_transformers_message(monkeypatch, tmp_path):
    monkeypatch.setenv("ENERGAIZER_CACHE_DIR", str(tmp_path))
    capture.clear_memory_cache()
    real_import = builtins.__import__

    def import_without_transformers(name, *args, **kwargs):
        if name == "transformers" or name.startswith("transformers."):
            raise ImportError("No module named 'transformers'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", import_without_transformers)
    with pytest.raises(InputError) as raised:
        capture_model("gpt2", batch=1, seq=8)
    message = str(raised.value)
    assert "transformers" in message
    assert 'pip install "energaizer[model]"' in message
    assert "torch==2.13.0" in message


def test_uninstalled_torch_message(monkeypatch):
    real_version = importlib.metadata.version

    def version_without_torch(package):
        if package == "torch":
            raise importlib.metadata.PackageNotFoundError(package)
        return real_version(package)

    monkeypatch.setattr(importlib.metadata, "version", version_without_torch)
    capture._versions.cache_clear()
    try:
        with pytest.raises(InputError, match='pip install "energaizer\\[model\\]"'):
            capture_model("gpt2", batch=1, seq=8)
    finally:
        capture._versions.cache_clear()


@pytest.mark.parametrize("arguments, fragment", [
    ({"batch": 0, "seq": 8}, "batch"),
    ({"batch": 1, "seq": -3}, "seq"),
    ({"batch": True, "seq": 8}, "batch"),
    ({"batch": 1, "seq": 8, "dtype": "int8"}, "dtype"),
    ({"batch": 1, "seq": 8, "phase": "inference"}, "phase"),
    ({"batch": 1, "seq": 8, "attention": "flash"}, "attention"),
])
def test_invalid_arguments(arguments, fragment):
    with pytest.raises(InputError, match=fragment):
        capture_model("gpt2", **arguments)


@pytest.mark.parametrize("name, phase, seq, fragment", [
    ("gpt2", "prefill", 1025, "at most 1024 positions"),
    ("gpt2", "decode", 1024, "at most 1024 positions"),
    ("bert-base", "decode", 16, "no decode phase"),
    ("resnet-50", "decode", 16, "image model"),
])
def test_impossible_shape_or_phase(name, phase, seq, fragment):
    with pytest.raises(InputError, match=fragment):
        capture_model(name, batch=1, seq=seq, phase=phase)


def test_unknown_preset():
    with pytest.raises(ProfileError, match="Unknown model preset"):
        capture_model("gpt-5", batch=1, seq=8)


def test_config_dict_without_model_type():
    with pytest.raises(InputError, match="model_type"):
        capture_model({"n_layer": 2}, batch=1, seq=8)


@pytest.mark.shared_data
def test_gpt2_gemms_match_measured_workload(shared_data):
    """The GEMMs of an eager GPT-2 forward against a measured GPT2Model workload list,
    which has the same layers but no LM head."""
    path = (shared_data / "measurements" / "energaizer_ispass26" / "workloads"
            / "gpt2model_gpt2_pbf16_b1_s128_modeprefill.json")
    measured = Counter(
        (entry["batch"], entry["dimM"], entry["dimN"], entry["dimK"])
        for entry, tags in json.loads(path.read_text()) if "gemm" in tags
    )
    workload = capture_model("gpt2", batch=1, seq=128, phase="forward", attention="eager")
    captured = Counter((g["batch"], g["m"], g["n"], g["k"]) for g in gemms(workload))
    assert captured - measured == Counter({(1, 128, 50257, 768): 1})
    assert measured - captured == Counter()


LARGE_PRESETS = {"llama-3.1-70b", "qwen3-32b", "qwen3-14b"}


def preset_phases():
    for name in list_presets():
        image = name.startswith(("resnet", "vit", "mobilevit"))
        encoder = name.startswith("bert")
        for phase in ("forward", "train") if image or encoder else ("prefill", "decode", "train"):
            marks = [pytest.mark.slow] if name in LARGE_PRESETS else []
            yield pytest.param(name, phase, id=f"{name}-{phase}", marks=marks)


@pytest.mark.parametrize("name, phase", list(preset_phases()))
def test_preset_captures_fully_mapped(name, phase):
    workload = capture_model(name, batch=2, seq=32, phase=phase)
    assert workload.source["capture"] == "template"
    assert workload.source["unmapped_ops"] == {}
    assert workload.flops > 0
