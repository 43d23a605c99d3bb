"""Tiles, waves, split-K and efficiency of the GEMM model."""

from __future__ import annotations

import math

import pytest

from energaizer.analyze.tiles import TileConfig
from energaizer.perf import predict_op
from energaizer.workload.ops import convolution, gemm


def test_gemm_tiles_and_waves_by_hand(a100):
    # 4096 / 128 = 32 row tiles, 4096 / 256 = 16 column tiles. A 128 x 256 block holds
    # 128 KB of fp32 accumulators, so one block fits per SM and a wave is 108 blocks.
    op = gemm(4096, 4096, 4096, "bf16")
    op.tile = TileConfig(block_m=128, block_n=256)
    prediction = predict_op(op, a100)
    assert prediction.tiles == 32 * 16
    assert prediction.waves == math.ceil(512 / 108)
    assert prediction.last_wave_fill == pytest.approx((512 - 4 * 108) / 108)
    assert prediction.split_k == 1
    assert prediction.tile.block_m == 128
    assert prediction.tile.block_n == 256
    assert prediction.tile.block_k == 32
    assert prediction.tile.source == "kernel name"


def test_gemm_partial_last_wave_lowers_tensor_activity(a100):
    # 108 blocks fill one wave exactly; 109 leave 107 SMs idle in a second wave.
    full = gemm(128 * 108, 256, 4096, "bf16")
    full.tile = TileConfig(block_m=128, block_n=256)
    spill = gemm(128 * 109, 256, 4096, "bf16")
    spill.tile = TileConfig(block_m=128, block_n=256)
    full_prediction = predict_op(full, a100)
    spill_prediction = predict_op(spill, a100)
    assert full_prediction.waves == 1
    assert spill_prediction.waves == 2
    assert spill_prediction.last_wave_fill == pytest.approx(1 / 108)
    assert spill_prediction.time_s > 1.8 * full_prediction.time_s
    assert spill_prediction.activity["tensor"] < 0.6 * full_prediction.activity["tensor"]


def test_gemm_tile_quantization(a100):
    tile = TileConfig(block_m=128, block_n=128)
    times = {}
    tiles = {}
    for m in (128, 129, 256):
        op = gemm(m, 8192, 8192, "bf16")
        op.tile = tile
        prediction = predict_op(op, a100)
        times[m] = prediction.time_s
        tiles[m] = prediction.tiles
    assert tiles[129] == tiles[256]
    assert tiles[129] == 2 * tiles[128]
    assert times[129] == pytest.approx(times[256], rel=0.05)
    assert times[129] > 1.5 * times[128]


def test_gemm_split_k_for_deep_k(a100):
    op = gemm(64, 64, 65536, "bf16")
    prediction = predict_op(op, a100)
    unsplit = gemm(64, 64, 65536, "bf16")
    unsplit.tile = TileConfig(block_m=64, block_n=64, split_k=1)
    unsplit_prediction = predict_op(unsplit, a100)
    assert prediction.split_k > 1
    assert prediction.tiles == prediction.split_k  # one 64 x 64 output tile per split
    assert prediction.tiles <= a100.sms
    assert unsplit_prediction.split_k == 1
    assert prediction.time_s < 0.5 * unsplit_prediction.time_s


def test_gemm_no_split_k_for_wide_output(a100):
    prediction = predict_op(gemm(4096, 4096, 65536, "bf16"), a100)
    assert prediction.split_k == 1


def test_large_bf16_gemm_efficiency_a100(a100):
    op = gemm(8192, 8192, 8192, "bf16")
    prediction = predict_op(op, a100)
    efficiency = op.flops / prediction.time_s / a100.peak_flops("bf16")
    assert 0.70 <= efficiency <= 0.95
    assert prediction.bound == "compute"
    assert prediction.activity["tensor"] == pytest.approx(efficiency, rel=0.01)


def test_large_bf16_gemm_h100_over_twice_a100(a100, h100):
    op = gemm(8192, 8192, 8192, "bf16")
    a100_s = predict_op(op, a100).time_s
    h100_s = predict_op(op, h100).time_s
    assert a100_s > 2.0 * h100_s


def test_fp32_gemm_uses_cuda_cores(a100):
    prediction = predict_op(gemm(4096, 4096, 4096, "fp32"), a100)
    assert prediction.activity["tensor"] == 0.0
    assert prediction.activity["fp32"] > 0.7
    assert prediction.tile.block_k == 8


def test_gemv_streams_weights(a100):
    # A matrix-vector product reads the 32 MiB matrix once from DRAM.
    op = gemm(1, 4096, 4096, "bf16")
    prediction = predict_op(op, a100)
    stream_s = 4096 * 4096 * 2 / (a100.memory_bandwidth_b_s * 0.88)
    assert prediction.bound == "memory"
    assert prediction.tiles is None
    assert prediction.activity["tensor"] == 0.0
    assert prediction.time_s == pytest.approx(stream_s, rel=0.15)


def test_tiny_gemm_is_latency_bound(a100):
    prediction = predict_op(gemm(16, 16, 16, "bf16"), a100)
    assert prediction.bound == "latency"
    assert prediction.time_s < 10e-6


def test_gemm_without_geometry_uses_roofline(a100):
    op = gemm(4096, 4096, 4096, "bf16")
    op.geometry = {}
    prediction = predict_op(op, a100)
    assert prediction.tiles is None
    assert prediction.time_s >= op.flops / a100.peak_flops("bf16")


def test_gemm_invalid_geometry_raises(a100):
    op = gemm(64, 64, 64, "bf16")
    op.geometry["k"] = 0
    with pytest.raises(ValueError, match="must all be positive"):
        predict_op(op, a100)


def test_convolution_as_implicit_gemm(a100):
    op = convolution(32, 256, 256, 56, 56, 3, 3, "fp16", padding=1)
    prediction = predict_op(op, a100)
    assert prediction.tiles is not None
    assert prediction.bound == "compute"
    assert op.flops / prediction.time_s > 0.5 * a100.peak_flops("fp16")
