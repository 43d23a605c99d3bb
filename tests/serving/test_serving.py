"""Serving estimates: spec parsing, phase split, tensor parallelism and the CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from energaizer.cli import app
from energaizer.errors import InputError
from energaizer.serving import ServingModel, ServingSpec, estimate_serving, parse_length
from energaizer.serving.layers import decode_workload, dense_architecture, prefill_workload

SMALL = {"model": "llama-3.1-8b", "gpu": "h100-sxm5-80gb", "prompt_tokens": 512,
         "output_tokens": 128}


@pytest.fixture(scope="module")
def batch_8():
    return estimate_serving(ServingSpec(batch=8, **SMALL))


def test_length_fixed_number():
    length = parse_length(300, "prompt_tokens")
    assert length.mean == 300
    assert length.kind == "fixed"


@pytest.mark.parametrize("value, mean", [
    ({"distribution": "uniform", "low": 100, "high": 300}, 200),
    ({"distribution": "normal", "mean": 500, "std": 50}, 500),
    ({"distribution": "lognormal", "mean": 1000, "sigma": 0.5}, 1000),
    ({"distribution": "lognormal", "mean": 1000, "sigma": 1.2}, 1000),
    ([100, 200, 600], 300),
    ({"distribution": "values", "values": [10, 30]}, 20),
])
def test_length_distribution_means(value, mean):
    assert parse_length(value, "prompt_tokens").mean == pytest.approx(mean, rel=0.005)


@pytest.mark.parametrize("value", [0, -5, True, "long", {"distribution": "gamma"},
                                   {"distribution": "uniform", "low": 10}, []])
def test_length_invalid_raises(value):
    with pytest.raises(InputError):
        parse_length(value, "prompt_tokens")


def test_estimate_contract_fields(batch_8):
    data = batch_8.to_dict()
    assert data["schema"] == "energaizer.estimate/1"
    assert data["source"]["kind"] == "serving"
    for key in ("energy_per_request_j", "prefill_energy_j", "decode_energy_j",
                "energy_per_output_token_j", "output_tokens_per_s", "time_to_first_token_s",
                "time_per_output_token_s"):
        assert data[key] > 0, key


def test_estimate_energy_sums(batch_8):
    data = batch_8.to_dict()
    by_class = sum(item["energy_j"] for item in data["by_class"])
    assert by_class + data["idle_energy_j"] == pytest.approx(data["energy_j"], rel=1e-9)
    assert batch_8.prefill_energy_j + batch_8.decode_energy_j == pytest.approx(
        batch_8.energy_per_request_j, rel=1e-9)
    assert data["avg_power_w"] == pytest.approx(data["energy_j"] / data["duration_s"])


def test_energy_per_token_falls_with_batch(batch_8):
    batch_64 = estimate_serving(ServingSpec(batch=64, **SMALL))
    assert batch_64.energy_per_output_token_j < batch_8.energy_per_output_token_j
    assert batch_64.output_tokens_per_s > batch_8.output_tokens_per_s
    assert batch_64.time_per_output_token_s > batch_8.time_per_output_token_s


def test_decode_step_grows_with_cache():
    model = ServingModel(ServingSpec(batch=32, **SMALL))
    assert model.decode_step(8000).energy_j > model.decode_step(500).energy_j


def test_step_overhead_adds_idle_energy():
    without = estimate_serving(ServingSpec(batch=8, step_overhead_s=0.0, **SMALL))
    with_gap = estimate_serving(ServingSpec(batch=8, step_overhead_s=0.005, **SMALL))
    assert without.estimate.idle_energy_j == pytest.approx(0.0, abs=1e-9)
    assert with_gap.estimate.idle_energy_j > 0.0
    assert with_gap.time_per_output_token_s == pytest.approx(
        without.time_per_output_token_s + 0.005, rel=0.05)


def test_tensor_parallel_splits_gemms():
    arch = dense_architecture("llama-3.1-8b")
    single = decode_workload(arch, 8, 1000, num_gpus=1, dtype="bf16")
    split = decode_workload(arch, 8, 1000, num_gpus=4, dtype="bf16")
    def find(workload, name):
        return next(op for op in workload.ops if op.name == name)

    assert find(split, "gate_up_proj").geometry["n"] * 4 == find(single, "gate_up_proj").geometry["n"]
    assert find(split, "down_proj").geometry["k"] * 4 == find(single, "down_proj").geometry["k"]
    reduces = sum(op.count for op in split.ops if op.geometry.get("kind") == "all_reduce")
    assert reduces == 2 * arch.layers + 1
    assert not any(op.op_class.value == "communication" for op in single.ops)


def test_decode_is_graph_launched():
    arch = dense_architecture("llama-3.1-8b")
    assert decode_workload(arch, 8, 100, num_gpus=1, dtype="bf16").eager_launches is False


def test_prefix_cache_hits_shrink_prefill_only():
    cold = estimate_serving(ServingSpec(batch=8, **SMALL))
    warm = estimate_serving(ServingSpec(batch=8, prefix_cache_hit_rate=0.75, **SMALL))
    # 128 computed tokens instead of 512: less work, but the weights are still read once.
    assert warm.prefill_energy_j < 0.6 * cold.prefill_energy_j
    assert warm.prefill_s < 0.6 * cold.prefill_s
    # Decode reads the whole KV cache either way.
    assert warm.decode_energy_j == pytest.approx(cold.decode_energy_j, rel=1e-9)
    assert warm.to_dict()["source"]["prefix_cache_hit_rate"] == 0.75


def test_cached_prefill_computes_only_new_tokens():
    arch = dense_architecture("llama-3.1-8b")
    workload = prefill_workload(arch, 1000, num_gpus=1, dtype="bf16", cached_tokens=900)
    qkv = next(op for op in workload.ops if op.name == "qkv_proj")
    attention = next(op for op in workload.ops if op.name == "flash_attention_prefill")
    assert qkv.geometry["m"] == 100
    assert (attention.geometry["query_len"], attention.geometry["key_len"]) == (100, 1000)
    # Query i of the last 100 attends to 900 + i keys: 100 x 900 + 100 x 101 / 2 key pairs,
    # which the formula 100 x 1000 x (1 - 100 / 2000) approximates to within 0.1%.
    pairs = 100 * 900 + 100 * 101 / 2
    heads, head_dim = arch.heads, arch.head_dim
    assert attention.flops == pytest.approx(4 * heads * head_dim * pairs, rel=1e-3)
    with pytest.raises(ValueError, match="cached_tokens"):
        prefill_workload(arch, 1000, num_gpus=1, dtype="bf16", cached_tokens=1000)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, True, "half"])
def test_prefix_cache_hit_rate_invalid(rate):
    with pytest.raises(InputError, match="prefix_cache_hit_rate"):
        ServingSpec(prefix_cache_hit_rate=rate, **SMALL)


def test_time_corrections_default_off_for_graph_decode():
    spec = ServingSpec(batch=8, **SMALL)
    assert spec.time_corrections == "none"
    assert ServingModel(spec).calibration.corrections == {}
    corrected = ServingModel(ServingSpec(batch=8, time_corrections="calibration", **SMALL))
    assert corrected.calibration.corrections
    assert corrected.decode_step(600).duration_s > ServingModel(spec).decode_step(600).duration_s


def test_uneven_heads_rejected():
    with pytest.raises(InputError, match="do not split"):
        estimate_serving(ServingSpec(num_gpus=3, **SMALL))


def test_moe_config_rejected(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "mixtral", "hidden_size": 64,
                                  "num_local_experts": 8}))
    with pytest.raises(InputError, match="mixture of experts"):
        dense_architecture(str(config))


def test_cli_serve_estimate_json():
    result = CliRunner().invoke(app, ["serve-estimate", "--model", "llama-3.1-8b", "--batch",
                                      "16", "--prompt-tokens", "256", "--output-tokens",
                                      "64", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["source"]["batch"] == 16
    assert data["source"]["prompt_tokens"]["mean"] == 256


def test_cli_spec_file_overridden(tmp_path):
    spec = tmp_path / "serving.yaml"
    spec.write_text("model: llama-3.1-8b\nbatch: 4\nprompt_tokens: [100, 300]\n"
                    "output_tokens: {distribution: uniform, low: 50, high: 150}\n")
    result = CliRunner().invoke(app, ["serve-estimate", str(spec), "--batch", "32", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["source"]["batch"] == 32
    assert data["source"]["prompt_tokens"]["mean"] == 200
    assert data["source"]["output_tokens"]["distribution"] == "uniform"


def test_cli_spec_unknown_key(tmp_path):
    spec = tmp_path / "serving.yaml"
    spec.write_text("model: llama-3.1-8b\nbatchsize: 4\n")
    result = CliRunner().invoke(app, ["serve-estimate", str(spec)])
    assert result.exit_code == 2
    assert "batchsize" in result.output


def _estimate_serving_json(*options: str) -> dict:
    result = CliRunner().invoke(app, ["estimate", "--serving", "--model", "llama-3.1-8b",
                                      "--batch", "16", "--prompt-tokens", "256",
                                      "--output-tokens", "64", "--json", *options])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cli_estimate_serving_applies_options():
    base = _estimate_serving_json()
    slow = _estimate_serving_json("--clock-mhz", "900")
    cached = _estimate_serving_json("--prefix-cache-hit-rate", "0.5")
    corrected = _estimate_serving_json("--time-corrections", "calibration")
    assert slow["gpu"]["clock_mhz"] == 900
    assert slow["energy_per_output_token_j"] != base["energy_per_output_token_j"]
    assert cached["source"]["prefix_cache_hit_rate"] == 0.5
    assert cached["prefill_energy_j"] < base["prefill_energy_j"]
    assert corrected["source"]["time_corrections"] == "calibration"
    assert corrected["time_per_output_token_s"] > base["time_per_output_token_s"]


@pytest.mark.parametrize("options, message", [
    (["--seq", "100"], "--seq applies to trace"),
    (["--phase", "decode", "--attention", "eager"], "--phase, --attention apply"),
    (["--power-limit-w", "10"], "no clock could meet it"),
    (["--dtype", "fp16", "--calibration", "missing.json"], "calibration profile not found"),
])
def test_cli_estimate_serving_rejects(options, message):
    result = CliRunner().invoke(app, ["estimate", "--serving", "--model", "llama-3.1-8b",
                                      *options])
    assert result.exit_code == 2
    assert message in result.output


def test_cli_serving_options_need_serving():
    result = CliRunner().invoke(app, ["estimate", "--model", "gpt2", "--num-gpus", "2"])
    assert result.exit_code == 2
    assert "--num-gpus applies only with --serving" in result.output


@pytest.mark.parametrize("line, message", [
    ("dtype: int3", "dtype 'int3' is invalid"),
    ("clock_mhz: -5", "clock_mhz must be a positive finite number"),
    ("power_limit_w: .nan", "power_limit_w must be a positive finite number"),
    ("gpu: 123", "gpu must be a GPU profile id or name"),
    ("step_overhead_s: abc", "step_overhead_s must be a finite number"),
    ("step_overhead_s: .inf", "step_overhead_s must be a finite number"),
    ("cache_points: 100000000", "cache_points must be at most 1000"),
    ("prompt_tokens: {distribution: lognormal, mean: 1000, sigma: 50}",
     "sigma must be from 0 to 5"),
])
def test_spec_invalid_values_rejected(tmp_path, line, message):
    spec = tmp_path / "serving.yaml"
    spec.write_text(f"model: llama-3.1-8b\n{line}\n")
    result = CliRunner().invoke(app, ["estimate", "--serving", str(spec)])
    assert result.exit_code == 2
    assert message in result.output


def test_spec_not_utf8_rejected(tmp_path):
    spec = tmp_path / "serving.yaml"
    spec.write_bytes(b"\xff\xfe")
    result = CliRunner().invoke(app, ["estimate", "--serving", str(spec)])
    assert result.exit_code == 2
    assert "is not UTF-8 text" in result.output


def test_spec_model_path_relative_to_spec(tmp_path, monkeypatch):
    folder = tmp_path / "specs"
    folder.mkdir()
    config = dense_architecture("llama-3.1-8b")
    (folder / "config.json").write_text(json.dumps({
        "model_type": "llama", "hidden_size": config.hidden,
        "intermediate_size": config.intermediate, "num_attention_heads": config.heads,
        "num_key_value_heads": config.kv_heads, "num_hidden_layers": 2,
        "vocab_size": config.vocab}))
    (folder / "serving.yaml").write_text("model: config.json\nbatch: 4\n")
    (folder / "outside.yaml").write_text("model: ../elsewhere/config.json\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["estimate", "--serving", "specs/serving.yaml", "--json"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["estimate", "--serving", "specs/outside.yaml"])
    assert result.exit_code == 2
    assert "leads outside the spec's folder" in result.output


def test_memory_overflow_warned():
    fits = estimate_serving(ServingSpec(batch=8, **SMALL))
    too_big = estimate_serving(ServingSpec(model="llama-3.1-70b", batch=8, prompt_tokens=512,
                                           output_tokens=128))
    assert not any("memory" in warning for warning in fits.estimate.warnings)
    warning = next(w for w in too_big.estimate.warnings if "memory" in w)
    assert "The weights (141 GB)" in warning


def test_context_overflow_warned():
    result = estimate_serving(ServingSpec(model="llama-3.1-8b", prompt_tokens=200_000,
                                          output_tokens=10))
    assert any("131,072-token context" in warning for warning in result.estimate.warnings)


def test_request_latency_spans_all_tokens(batch_8):
    expected = (batch_8.time_to_first_token_s
                + (batch_8.output_tokens - 1) * batch_8.time_per_output_token_s)
    assert batch_8.request_latency_s == pytest.approx(expected)
    assert batch_8.to_dict()["serving"]["request_latency_s"] == pytest.approx(expected)
    assert batch_8.request_latency_s > batch_8.estimate.duration_s


def test_cli_serve_estimate_takes_operating_options():
    result = CliRunner().invoke(app, ["serve-estimate", "--model", "llama-3.1-8b", "--batch",
                                      "16", "--clock-mhz", "900", "--dtype", "fp16",
                                      "--time-corrections", "calibration", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["gpu"]["clock_mhz"] == 900
    assert data["source"]["dtype"] == "fp16"
    assert data["source"]["time_corrections"] == "calibration"


def test_fp8_weights_only_in_layer_gemms():
    arch = dense_architecture("llama-3.1-8b")
    workload = decode_workload(arch, 8, 1000, num_gpus=1, dtype="fp8")
    dtypes = {op.name: op.dtype for op in workload.ops}
    assert dtypes["qkv_proj"] == "fp8"
    assert dtypes["down_proj"] == "fp8"
    assert dtypes["paged_attention_decode"] == "bf16"
    assert dtypes["lm_head"] == "bf16"
    # The KV cache stays bf16, so writing it moves as many bytes as in a bf16 model.
    bf16 = decode_workload(arch, 8, 1000, num_gpus=1, dtype="bf16")
    def cache_bytes(ops):
        return next(op.bytes for op in ops if op.name == "reshape_and_cache")

    assert cache_bytes(workload.ops) == cache_bytes(bf16.ops)
