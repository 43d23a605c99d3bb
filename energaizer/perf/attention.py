"""Fused attention (FlashAttention-2 forward) priced as a tiled kernel.

Each thread block owns block_m query rows of one head and loops over the keys in blocks
of block_n. A step runs two tensor-core GEMMs (Q K^T and P V, 4 x bm x bn x head_dim
FLOPs together), one exponential per score on the special-function units and the online
softmax bookkeeping on the CUDA cores. With few blocks for the SMs, as in decoding, the
keys are split across blocks and a second pass combines the partial results
(flash-decoding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from energaizer.analyze.tiles import TileConfig
from energaizer.perf.clock import DeviceRates, has_tensor_rate
from energaizer.perf.cost import KernelCost
from energaizer.perf.geometry import geometry_sizes
from energaizer.perf.tiled import TiledKernel, blocks_per_sm, evaluate_tiled
from energaizer.workload.ops import Op, dtype_bytes

# Query x key block per head dimension when no kernel name gives one. PyTorch traces of
# head dimension 64 show Flash_fwd_kernel_traits<64, 128, 128, 4>, meaning 128 x 128
# blocks and 4 warps. The smaller blocks for larger head dimensions are estimates.
FLASH_BLOCKS = ((64, 128, 128), (128, 128, 64), (256, 64, 64))  # (max head_dim, bm, bn)
# Decoding pads its few query rows to the smallest block the MMA layout uses (estimate).
DECODE_BLOCK_M = 64
FLASH_STAGES = 2  # K and V double-buffered (estimate)
FLASH_WARPS = 4
# Running max, subtract, rescale and sum per score on the CUDA cores (estimate).
SOFTMAX_FLOPS_PER_SCORE = 4.0
ACCUMULATOR_BYTES = 4
MODEL_TILE_SOURCE = "performance model"


@dataclass(frozen=True)
class AttentionShape:
    """Sizes of one attention call, with the query rows that one block group shares."""

    batch: int
    heads: int
    kv_heads: int
    query_len: int
    key_len: int
    head_dim: int
    causal: bool
    element_bytes: int
    tensor_cores: bool
    # Decoding with grouped-query attention stacks the query heads that share a KV head
    # into the rows of one block, so the KV cache is read once per group.
    packed: bool

    @property
    def rows(self) -> int:
        """Query rows per block group."""
        return self.heads // self.kv_heads if self.packed else self.query_len

    @property
    def groups(self) -> int:
        """Block groups, each covering `rows` query rows against one KV head."""
        return self.batch * (self.kv_heads if self.packed else self.heads)


def attention_shape(op: Op, rates: DeviceRates) -> AttentionShape | None:
    """Read the attention geometry of `op`, or return None when a size is missing."""
    keys = ("batch", "heads", "query_len", "key_len", "head_dim")
    sizes = geometry_sizes(op, keys)
    kv_sizes = geometry_sizes(op, ("kv_heads",), {"kv_heads": sizes[1] if sizes else 1})
    if sizes is None or kv_sizes is None:
        return None
    batch, heads, query_len, key_len, head_dim = sizes
    (kv_heads,) = kv_sizes
    if heads % kv_heads:
        raise ValueError(
            f"Invalid geometry for op {op.name!r}: heads ({heads}) must be a multiple of "
            f"kv_heads ({kv_heads})."
        )
    return AttentionShape(
        batch=batch, heads=heads, kv_heads=kv_heads, query_len=query_len,
        key_len=key_len, head_dim=head_dim, causal=bool(op.geometry.get("causal", False)),
        element_bytes=dtype_bytes(op.dtype),
        tensor_cores=op.tensor_cores and has_tensor_rate(rates.gpu, op.dtype),
        packed=query_len == 1 and kv_heads < heads,
    )


def _attention_tile(tile: TileConfig | None, shape: AttentionShape) -> TileConfig:
    """Return the op's tile with its gaps filled, or the FlashAttention-2 default."""
    if tile is None or not tile.block_m or not tile.block_n:
        _, block_m, block_n = next(
            (entry for entry in FLASH_BLOCKS if shape.head_dim <= entry[0]), FLASH_BLOCKS[-1]
        )
        if shape.rows <= DECODE_BLOCK_M:
            block_m = DECODE_BLOCK_M
        tile = TileConfig(block_m=block_m, block_n=block_n, source=MODEL_TILE_SOURCE)
    return replace(tile, block_k=tile.block_k or shape.head_dim,
                   stages=tile.stages or FLASH_STAGES)


def _mean_key_blocks(shape: AttentionShape, block_m: int, block_n: int) -> float:
    """Return the mean number of key blocks that one query block visits.

    A causal mask aligned to the bottom right (query i attends to keys up to
    i + key_len - query_len) lets each query block stop at its last visible key.
    """
    key_blocks = math.ceil(shape.key_len / block_n)
    if not shape.causal or shape.packed:
        return float(key_blocks)
    query_ends = np.minimum(
        np.arange(1, math.ceil(shape.rows / block_m) + 1) * block_m, shape.query_len
    )
    visible = np.clip(query_ends + (shape.key_len - shape.query_len), 0, shape.key_len)
    return max(float(np.ceil(visible / block_n).mean()), 1.0)


def _split_kv(query_blocks: int, key_blocks: float, sms: int) -> int:
    """Return how many blocks share the keys of one query block: more than 1 when the
    query blocks alone leave SMs idle."""
    if query_blocks >= sms:
        return 1
    return max(1, min(sms // query_blocks, int(key_blocks)))


def _dram_load_bytes(shape: AttentionShape, blocks_per_kv_head: int, in_flight: int,
                     l2_usable_bytes: float) -> float:
    """Estimate the bytes read from DRAM: Q once, K and V once per KV head, plus re-reads.

    The blocks of one KV head that run in the same wave share each K and V block through
    L2. When a head's blocks span several waves, each later wave reads K and V again, and
    misses L2 in the share by which one head's K and V outgrow the usable L2.
    """
    size = shape.element_bytes
    query_bytes = shape.batch * shape.heads * shape.query_len * shape.head_dim * size
    head_kv_bytes = 2.0 * shape.key_len * shape.head_dim * size
    kv_bytes = shape.batch * shape.kv_heads * head_kv_bytes
    passes = math.ceil(blocks_per_kv_head / max(in_flight, 1))
    miss_share = min(1.0, max(0.0, 1.0 - l2_usable_bytes / head_kv_bytes))
    return query_bytes + kv_bytes * (1.0 + (passes - 1) * miss_share)


def _output_bytes(shape: AttentionShape, split: int) -> tuple[float, float]:
    """Return (bytes the blocks write, bytes the split combine pass moves)."""
    outputs = shape.batch * shape.heads * shape.query_len
    output_bytes = float(outputs * shape.head_dim * shape.element_bytes)
    if split == 1:
        return output_bytes, 0.0
    # Each split writes an fp32 partial output and its log-sum-exp per query row.
    partial_bytes = float(split * outputs * (shape.head_dim + 1) * ACCUMULATOR_BYTES)
    return partial_bytes, partial_bytes + output_bytes


def _attention_kernel(shape: AttentionShape, tile: TileConfig, rates: DeviceRates,
                      dtype: str) -> TiledKernel:
    """Build the tiled kernel of one FlashAttention-2 forward call."""
    size = shape.element_bytes
    bm, bn, head_dim = tile.block_m, tile.block_n, tile.block_k
    query_blocks = shape.groups * math.ceil(shape.rows / bm)
    key_blocks = _mean_key_blocks(shape, bm, bn)
    split = _split_kv(query_blocks, key_blocks, rates.sms)
    resident = blocks_per_sm((bm + 2 * bn * tile.stages) * head_dim * size,
                             (bm * head_dim + bm * bn) * ACCUMULATOR_BYTES,
                             rates.gpu.smem_per_sm_kb)
    k_steps = key_blocks / split
    kv_step_bytes = 2.0 * bn * head_dim * size
    step_flops = 4.0 * bm * bn * head_dim
    blocks_per_kv_head = query_blocks * split // (shape.batch * shape.kv_heads)
    output_bytes, reduction_bytes = _output_bytes(shape, split)
    warps = tile.warps[0] if tile.warps and len(tile.warps) == 1 else FLASH_WARPS
    return TiledKernel(
        tile=tile,
        tiles=query_blocks * split,
        blocks_per_sm=resident,
        k_steps=k_steps,
        step_tensor_flops=step_flops if shape.tensor_cores else 0.0,
        step_cuda_flops=SOFTMAX_FLOPS_PER_SCORE * bm * bn
        + (0.0 if shape.tensor_cores else step_flops),
        step_sfu_ops=float(bm * bn),
        # Each block loads its Q block once, so those bytes are spread over the steps.
        step_l2_bytes=kv_step_bytes + bm * head_dim * size / k_steps,
        # Every warp reads the whole K and V blocks from shared memory (estimate).
        step_smem_bytes=(1 + warps) * kv_step_bytes,
        dram_load_bytes=_dram_load_bytes(shape, blocks_per_kv_head, rates.sms * resident,
                                         rates.l2_usable_bytes),
        output_bytes=output_bytes,
        tensor_flops_s=rates.tensor_flops_s(dtype) if shape.tensor_cores else 0.0,
        cuda_flops_s=rates.cuda_flops_s(dtype),
        reduction_bytes=reduction_bytes,
        split_k=split,
    )


def attention_cost(op: Op, rates: DeviceRates) -> KernelCost | None:
    """Price a fused attention op, or return None when its geometry lacks a size."""
    shape = attention_shape(op, rates)
    if shape is None:
        return None
    tile = _attention_tile(op.tile, shape)
    return evaluate_tiled(_attention_kernel(shape, tile, rates, op.dtype), rates)
