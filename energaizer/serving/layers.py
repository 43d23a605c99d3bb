"""The ops a serving engine such as vLLM runs for one transformer forward, built from the
model's config instead of a capture.

A capture records what Hugging Face `generate()` runs, which concatenates the KV cache
on every decode step. A serving engine keeps a paged cache instead, fuses the Q, K and V
projections and the gate and up projections, and writes only the new tokens' keys and
values. With tensor parallelism over N GPUs each GPU runs the column-parallel GEMMs
(QKV, gate-up, LM head) with n / N and the row-parallel ones (attention output, down)
with k / N, and two all-reduces per layer combine the row-parallel outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from energaizer.analyze.opclass import OpClass
from energaizer.errors import InputError
from energaizer.workload import ops
from energaizer.workload.ops import Op, dtype_bytes
from energaizer.workload.presets import load_model_config
from energaizer.workload.workload import Workload

# Config keys that mark a mixture-of-experts model, whose experts this module does not
# model.
MOE_KEYS = ("num_experts", "num_local_experts", "n_routed_experts")
# Logits are sampled in fp32.
LOGITS_DTYPE = "fp32"


def activation_dtype(dtype: str) -> str:
    """Return the dtype of activations, attention and the KV cache for weights in `dtype`.

    An fp8 checkpoint served by vLLM runs the layers' weight GEMMs in fp8 and keeps the
    activations, the KV cache, attention and the LM head in bf16 (the default kv-cache
    dtype).
    """
    return "bf16" if dtype == "fp8" else dtype


@dataclass(frozen=True)
class DenseArchitecture:
    """Sizes of a dense decoder-only transformer, from its Hugging Face config."""

    name: str
    model_type: str
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    layers: int
    vocab: int
    qk_norm: bool  # Qwen3 normalizes queries and keys per head
    max_positions: int | None = None  # max_position_embeddings: the trained context length

    @property
    def parameters(self) -> float:
        """Weight count without embeddings shared across GPUs, for sanity checks."""
        attention = self.hidden * (self.heads + 2 * self.kv_heads) * self.head_dim
        attention += self.heads * self.head_dim * self.hidden
        mlp = 3 * self.hidden * self.intermediate
        return float(self.layers * (attention + mlp) + 2 * self.vocab * self.hidden)

    def kv_cache_bytes_per_token(self, dtype: str) -> float:
        """Bytes of keys and values one token adds to the cache, over all layers."""
        return float(2 * self.layers * self.kv_heads * self.head_dim * dtype_bytes(dtype))


def dense_architecture(model: str) -> DenseArchitecture:
    """Read the sizes of `model` (a preset or a config.json path); reject other kinds."""
    config, name = load_model_config(model)
    config = config.get("text_config", config)
    moe = [key for key in MOE_KEYS if config.get(key)]
    if moe:
        raise InputError(f"Model {name} is a mixture of experts ({moe[0]} is set); the "
                         "serving estimate covers dense decoder-only models only.")
    required = ("hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers",
                "vocab_size")
    missing = [key for key in required if not config.get(key)]
    if missing:
        raise InputError(f"Model {name} is not a Llama-style decoder: its config lacks "
                         f"{', '.join(missing)}. Use a preset such as llama-3.1-8b.")
    heads = int(config["num_attention_heads"])
    return DenseArchitecture(
        name=name,
        model_type=str(config.get("model_type", "")),
        hidden=int(config["hidden_size"]),
        intermediate=int(config["intermediate_size"]),
        heads=heads,
        kv_heads=int(config.get("num_key_value_heads") or heads),
        head_dim=int(config.get("head_dim") or config["hidden_size"] // heads),
        layers=int(config["num_hidden_layers"]),
        vocab=int(config["vocab_size"]),
        qk_norm=str(config.get("model_type", "")).startswith("qwen3"),
        max_positions=int(config["max_position_embeddings"])
        if config.get("max_position_embeddings") else None,
    )


def check_tensor_parallel(arch: DenseArchitecture, num_gpus: int) -> None:
    """Raise InputError when the heads do not split evenly over `num_gpus`."""
    if arch.heads % num_gpus:
        raise InputError(f"{arch.name} has {arch.heads} attention heads, which do not split "
                         f"over {num_gpus} GPUs; choose a divisor of {arch.heads}.")


def _layer_ops(arch: DenseArchitecture, tokens: int, attention: Op, num_gpus: int,
               dtype: str, phase: str) -> list[Op]:
    """Ops of one decoder layer over `tokens` tokens on one of `num_gpus` GPUs."""
    n = num_gpus
    weights, dtype = dtype, activation_dtype(dtype)
    q_width = arch.heads * arch.head_dim // n
    kv_width = max(arch.kv_heads // n, 1) * arch.head_dim
    size = dtype_bytes(dtype)
    layer = [
        # vLLM fuses the residual add into RMSNorm: read x and residual, write both.
        ops.memory_bound(OpClass.NORMALIZATION, tokens * arch.hidden, dtype, reads=2,
                         writes=2, flops_per_element=4, name="fused_add_rms_norm", phase=phase),
        ops.gemm(tokens, q_width + 2 * kv_width, arch.hidden, weights, name="qkv_proj",
                 phase=phase),
        ops.memory_bound(OpClass.ELEMENTWISE, tokens * (q_width + kv_width), dtype,
                         flops_per_element=6, name="rotary_embedding", phase=phase),
    ]
    if arch.qk_norm:
        layer.append(ops.memory_bound(OpClass.NORMALIZATION, tokens * (q_width + kv_width),
                                      dtype, flops_per_element=4, name="qk_rms_norm",
                                      phase=phase))
    layer += [
        ops.copy(tokens * 2 * kv_width * size, name="reshape_and_cache", phase=phase),
        attention,
        ops.gemm(tokens, arch.hidden, q_width, weights, name="o_proj", phase=phase),
    ]
    layer += _all_reduce(tokens * arch.hidden * size, n, dtype, phase)
    layer += [
        ops.memory_bound(OpClass.NORMALIZATION, tokens * arch.hidden, dtype, reads=2,
                         writes=2, flops_per_element=4, name="fused_add_rms_norm", phase=phase),
        ops.gemm(tokens, 2 * arch.intermediate // n, arch.hidden, weights, name="gate_up_proj",
                 phase=phase),
        ops.memory_bound(OpClass.ELEMENTWISE, tokens * arch.intermediate // n, dtype, reads=2,
                         writes=1, flops_per_element=5, name="silu_and_mul", phase=phase),
        ops.gemm(tokens, arch.hidden, arch.intermediate // n, weights, name="down_proj",
                 phase=phase),
    ]
    layer += _all_reduce(tokens * arch.hidden * size, n, dtype, phase)
    return layer


def _all_reduce(nbytes: int, num_gpus: int, dtype: str, phase: str) -> list[Op]:
    if num_gpus == 1:
        return []
    return [ops.collective("all_reduce", nbytes, num_gpus, dtype, phase=phase)]


def _head_ops(arch: DenseArchitecture, tokens: int, sampled: int, num_gpus: int, dtype: str,
              phase: str) -> tuple[list[Op], list[Op]]:
    """Embedding lookup before the layers; final norm, LM head and sampling after them.

    Only the `sampled` positions (the last of each sequence) go through the LM head.
    """
    dtype = activation_dtype(dtype)
    vocab_share = -(-arch.vocab // num_gpus)
    first = [ops.memory_bound(OpClass.EMBEDDING, tokens * arch.hidden, dtype,
                              flops_per_element=0, name="embedding", phase=phase)]
    first += _all_reduce(tokens * arch.hidden * dtype_bytes(dtype), num_gpus, dtype, phase)
    last = [
        ops.memory_bound(OpClass.NORMALIZATION, sampled * arch.hidden, dtype, reads=2,
                         writes=1, flops_per_element=4, name="final_rms_norm", phase=phase),
        ops.gemm(sampled, vocab_share, arch.hidden, dtype, name="lm_head", phase=phase),
    ]
    if num_gpus > 1:
        gathered = sampled * vocab_share * dtype_bytes(LOGITS_DTYPE) * num_gpus
        last.append(ops.collective("all_gather", gathered, num_gpus, LOGITS_DTYPE, phase=phase))
    # Sampling: softmax over the logits, then a top-k/top-p pass reading them again.
    last.append(ops.memory_bound(OpClass.SOFTMAX, sampled * arch.vocab, LOGITS_DTYPE,
                                 reads=2, writes=1, flops_per_element=5, name="sampler",
                                 phase=phase))
    return first, last


def _with_layers(arch: DenseArchitecture, first: list[Op], layer: list[Op],
                 last: list[Op]) -> list[Op]:
    return first + [op.times(op.count * arch.layers) for op in layer] + last


def prefill_workload(arch: DenseArchitecture, prompt_tokens: int, *, num_gpus: int,
                     dtype: str, cached_tokens: int = 0) -> Workload:
    """Build the ops of one request's prefill of `prompt_tokens` tokens on one of
    `num_gpus` GPUs.

    The first `cached_tokens` of the prompt are already in the engine's prefix cache:
    only the rest go through the layers, and they attend over the whole prompt.
    """
    computed = prompt_tokens - cached_tokens
    if not 0 <= cached_tokens < prompt_tokens:
        raise ValueError(f"cached_tokens must be at least 0 and below the {prompt_tokens} "
                         f"prompt tokens, got {cached_tokens}.")
    attention = ops.attention(1, arch.heads // num_gpus, computed, prompt_tokens,
                              arch.head_dim, activation_dtype(dtype),
                              kv_heads=max(arch.kv_heads // num_gpus, 1), causal=True,
                              name="flash_attention_prefill", phase="prefill")
    layer = _layer_ops(arch, computed, attention, num_gpus, dtype, "prefill")
    first, last = _head_ops(arch, computed, 1, num_gpus, dtype, "prefill")
    return _serving_workload(arch, "prefill", _with_layers(arch, first, layer, last),
                             {"prompt_tokens": prompt_tokens, "cached_tokens": cached_tokens,
                              "num_gpus": num_gpus})


def decode_workload(arch: DenseArchitecture, batch: int, cache_tokens: int, *, num_gpus: int,
                    dtype: str) -> Workload:
    """Build the ops of one decode step, in which `batch` sequences each add one token to
    a KV cache of `cache_tokens`."""
    attention = ops.attention(batch, arch.heads // num_gpus, 1, cache_tokens + 1, arch.head_dim,
                              activation_dtype(dtype),
                              kv_heads=max(arch.kv_heads // num_gpus, 1),
                              name="paged_attention_decode", phase="decode")
    layer = _layer_ops(arch, batch, attention, num_gpus, dtype, "decode")
    first, last = _head_ops(arch, batch, batch, num_gpus, dtype, "decode")
    return _serving_workload(arch, "decode", _with_layers(arch, first, layer, last),
                             {"batch": batch, "cache_tokens": cache_tokens,
                              "num_gpus": num_gpus})


def _serving_workload(arch: DenseArchitecture, phase: str, op_list: list[Op],
                      details: dict[str, Any]) -> Workload:
    # vLLM captures decode steps (and, piecewise, prefill) in CUDA graphs, so kernels
    # launch back to back with no Python dispatch gaps.
    return Workload(
        name=f"{arch.name} {phase}",
        ops=op_list,
        source={"kind": "serving", "model": arch.name, "phase": phase, **details},
        eager_launches=False,
    )
