"""FlashAttention forward and decoding in the attention model."""

from __future__ import annotations

import pytest

from energaizer.analyze.tiles import TileConfig
from energaizer.perf import predict_op
from energaizer.perf.clock import DRAM_EFFICIENCY
from energaizer.workload.ops import attention


def test_attention_blocks_by_hand(a100):
    # head_dim 128 defaults to 128 query x 64 key blocks: 8 x 32 x (4096 / 128) blocks.
    prediction = predict_op(attention(8, 32, 4096, 4096, 128, "bf16"), a100)
    assert prediction.tiles == 8 * 32 * 32
    assert prediction.tile.block_m == 128
    assert prediction.tile.block_n == 64
    assert prediction.tile.block_k == 128
    assert prediction.split_k == 1
    assert prediction.bound == "compute"


def test_attention_tile_from_kernel_name(a100):
    op = attention(8, 32, 4096, 4096, 128, "bf16")
    op.tile = TileConfig(block_m=64, block_n=128, block_k=128, warps=(4,))
    prediction = predict_op(op, a100)
    assert prediction.tiles == 8 * 32 * 64
    assert prediction.tile.block_m == 64


def test_attention_causal_halves_time(a100):
    full = predict_op(attention(8, 32, 4096, 4096, 128, "bf16"), a100)
    causal = predict_op(attention(8, 32, 4096, 4096, 128, "bf16", causal=True), a100)
    assert 0.45 <= causal.time_s / full.time_s <= 0.6


def test_attention_uses_sfu_for_exponentials(a100):
    prediction = predict_op(attention(8, 32, 4096, 4096, 128, "bf16"), a100)
    assert prediction.activity["sfu"] > 0.05
    assert prediction.activity["tensor"] > 0.5


def test_decode_attention_is_memory_bound(a100):
    op = attention(8, 32, 1, 4096, 128, "bf16")
    prediction = predict_op(op, a100)
    kv_cache_bytes = 2 * 8 * 32 * 4096 * 128 * 2
    stream_s = kv_cache_bytes / (a100.memory_bandwidth_b_s * DRAM_EFFICIENCY)
    assert prediction.bound == "memory"
    assert prediction.time_s == pytest.approx(stream_s, rel=0.15)
    assert prediction.activity["dram"] > 0.7


def test_decode_attention_splits_keys_for_few_heads(a100):
    # 32 query blocks leave most of the 108 SMs idle, so the keys are split.
    prediction = predict_op(attention(1, 32, 1, 4096, 128, "bf16"), a100)
    assert prediction.split_k == 108 // 32
    assert prediction.tiles == 32 * (108 // 32)
    assert prediction.bound == "memory"


def test_decode_attention_packs_grouped_query_heads(a100):
    # 32 query heads over 8 KV heads read each KV head once, so the cache read is 4x
    # smaller than without grouping.
    grouped = predict_op(attention(8, 32, 1, 4096, 128, "bf16", kv_heads=8), a100)
    plain = predict_op(attention(8, 32, 1, 4096, 128, "bf16"), a100)
    assert grouped.time_s < 0.5 * plain.time_s


def test_attention_invalid_kv_heads_raises(a100):
    op = attention(1, 32, 128, 128, 64, "bf16", kv_heads=5)
    with pytest.raises(ValueError, match="multiple of kv_heads"):
        predict_op(op, a100)
