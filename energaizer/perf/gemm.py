"""GEMM and implicit-GEMM convolution priced as tiled kernels.

When the op carries no tile (no kernel name was seen), the model tries the tiles a
library such as cuBLAS or CUTLASS offers for the dtype and keeps the fastest, which is
what the library's heuristics aim for.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

from energaizer.analyze.opclass import OpClass
from energaizer.analyze.tiles import TileConfig
from energaizer.perf.clock import DeviceRates, has_tensor_rate
from energaizer.perf.cost import MODULES, KernelCost
from energaizer.perf.geometry import geometry_sizes
from energaizer.perf.memory import streaming_cost
from energaizer.perf.tiled import TiledKernel, blocks_per_sm, evaluate_tiled
from energaizer.workload.ops import Op, dtype_bytes

# Block tiles (M x N) tried when the op has none. Estimate: the sizes seen in cuBLAS and
# CUTLASS kernel names, such as ampere_..._128x128_..., volta_sgemm_128x64_nn.
TENSOR_CORE_TILES = ((256, 128), (128, 256), (128, 128), (128, 64), (64, 128), (64, 64))
SIMT_TILES = ((128, 128), (128, 64), (64, 128), (64, 64), (32, 32))
# K depth of one pipeline stage in bytes per operand row: 64 bytes (32 bf16 elements)
# before Hopper, as in ..._tilesize128x128x32_stage4_... and CUTLASS's tf32 "16x6"
# names, and 128 bytes on Hopper and later, as in sm90_..._tilesize128x128x64_....
TENSOR_K_TILE_BYTES = {"hopper": 128, "blackwell": 128}
TENSOR_K_TILE_BYTES_DEFAULT = 64
SIMT_K_TILE = 8  # estimate for CUDA-core GEMM kernels
# Ampere added asynchronous global-to-shared copies, so deeper pipelines pay off there
# and later. Older architectures double-buffer (estimate for both limits).
MAX_STAGES = {"pascal": 2, "volta": 2, "turing": 2}
MAX_STAGES_DEFAULT = 4
# Split-K is considered when the output tiles fill at most this share of the SMs, and
# each split keeps at least SPLIT_K_MIN_DEPTH of K (estimates).
SPLIT_K_MAX_SM_SHARE = 0.5
SPLIT_K_MIN_DEPTH = 256
ACCUMULATOR_BYTES = 4  # fp32 (or int32) accumulators and split-K partial results
# Output sub-tile (rows, columns) that one unit computes from operands it reads out of
# shared memory, None meaning the whole block width (estimates). Before Hopper a warp
# computes 64 x 64, or up to half the block. Hopper's warpgroup MMA covers 64 rows by the
# block's columns, and Blackwell's MMA 128 rows. A CUDA-core thread computes 8 x 8.
# NOTE: Blackwell's MMA over pairs of SMs, which halves the operand traffic per SM, is
# not modeled, so large GEMMs on B200 come out shared-memory-bound near 60% of peak.
TENSOR_SUB_TILE = {"hopper": (64, None), "blackwell": (128, None)}
TENSOR_SUB_TILE_DEFAULT = (64, 64)
SIMT_SUB_TILE = (8, 8)
# Blocks of a thread-block cluster that receive one B slab by multicast from L2, so each
# loads only its share of it (estimate: clusters of 2, as CUTLASS 3 kernels commonly use
# on Hopper and later).
B_MULTICAST_BLOCKS = {"hopper": 2, "blackwell": 2}
# Candidates within this share of the fastest count as ties, and the one that executes
# the least padded math wins them.
TILE_TIE_SHARE = 0.02
MODEL_TILE_SOURCE = "performance model"
_MODEL_TILES = {
    tensor_cores: tuple(
        TileConfig(block_m=bm, block_n=bn, source=MODEL_TILE_SOURCE) for bm, bn in sizes
    )
    for tensor_cores, sizes in ((True, TENSOR_CORE_TILES), (False, SIMT_TILES))
}


@dataclass(frozen=True)
class GemmShape:
    """Problem size of a (batched) GEMM and the DRAM bytes of its operands read once."""

    m: int
    n: int
    k: int
    batch: int
    element_bytes: int
    a_bytes: float
    b_bytes: float
    b_shared: bool  # one B serves every batch entry
    tensor_cores: bool


def gemm_shape(op: Op, rates: DeviceRates) -> GemmShape | None:
    """Read the GEMM view of a GEMM or convolution op, or return None without m, n and
    k."""
    sizes = geometry_sizes(op, ("m", "n", "k", "batch"), {"batch": 1})
    if sizes is None:
        return None
    m, n, k, batch = sizes
    size = dtype_bytes(op.dtype)
    operands = op.bytes - batch * m * n * size
    if op.op_class == OpClass.CONVOLUTION:
        # B is the filter of each group. A is the input image, which is smaller than its
        # im2col matrix.
        b_bytes = float(batch * n * k * size)
        a_bytes = operands - b_bytes
    else:
        a_bytes = float(batch * m * k * size)
        b_bytes = operands - a_bytes
    if a_bytes <= 0 or b_bytes <= 0:
        a_bytes, b_bytes = float(batch * m * k * size), float(batch * k * n * size)
    return GemmShape(
        m=m, n=n, k=k, batch=batch, element_bytes=size, a_bytes=a_bytes, b_bytes=b_bytes,
        b_shared=batch > 1 and b_bytes < 1.5 * k * n * size,
        tensor_cores=op.tensor_cores and has_tensor_rate(rates.gpu, op.dtype),
    )


def _complete_tile(tile: TileConfig, shape: GemmShape, rates: DeviceRates) -> TileConfig:
    """Fill in the K depth and pipeline stages that a tile from a kernel name may lack."""
    return _completed_tile(tile, shape.tensor_cores, shape.element_bytes,
                           rates.gpu.architecture, rates.gpu.smem_per_sm_kb)


@functools.lru_cache(maxsize=4096)
def _completed_tile(tile: TileConfig, tensor_cores: bool, element_bytes: int,
                    architecture: str, smem_per_sm_kb: float) -> TileConfig:
    block_k = tile.block_k
    if block_k is None and tensor_cores:
        k_bytes = TENSOR_K_TILE_BYTES.get(architecture, TENSOR_K_TILE_BYTES_DEFAULT)
        block_k = max(k_bytes // element_bytes, 8)
    elif block_k is None:
        block_k = SIMT_K_TILE
    stages = tile.stages
    if stages is None and not tensor_cores:
        stages = 2
    elif stages is None:
        stage_bytes = (tile.block_m + tile.block_n) * block_k * element_bytes
        fitting = int(smem_per_sm_kb * 1024 // stage_bytes)
        stages = max(2, min(MAX_STAGES.get(architecture, MAX_STAGES_DEFAULT), fitting))
    return replace(tile, block_k=block_k, stages=stages)


def _split_k(tile: TileConfig, shape: GemmShape, rates: DeviceRates) -> int:
    """Return the split-K factor: the tile's own, else the split that fills the SMs when
    the output tiles are far fewer than the SMs and K is deep."""
    if tile.split_k is not None:
        return max(1, tile.split_k)
    output_tiles = (shape.batch * math.ceil(shape.m / tile.block_m)
                    * math.ceil(shape.n / tile.block_n))
    if output_tiles > SPLIT_K_MAX_SM_SHARE * rates.sms:
        return 1
    return max(1, min(rates.sms // output_tiles, shape.k // SPLIT_K_MIN_DEPTH))


def _dram_load_bytes(shape: GemmShape, tile: TileConfig, split: int, slots: int,
                     l2_usable_bytes: float) -> float:
    """Estimate the operand bytes read from DRAM.

    Blocks of one wave step through K together, so an operand slab that several of them
    share is fetched from DRAM once and then hits L2. A wave covers a band of output
    tiles in row order. The next wave reads the same B columns (or A rows) again, and
    those re-reads miss L2 in the share by which the reused operand outgrows the usable
    L2.
    """
    row_tiles = math.ceil(shape.m / tile.block_m)
    column_tiles = math.ceil(shape.n / tile.block_n)
    output_tiles = shape.batch * row_tiles * column_tiles
    in_flight = max(1, min(output_tiles * split, slots) // split)
    rows = min(math.ceil(in_flight / column_tiles), shape.batch * row_tiles)
    columns = min(in_flight, column_tiles)
    b_copies = 1 if shape.b_shared else min(shape.batch, math.ceil(rows / row_tiles))
    k_row_bytes = shape.k * shape.element_bytes
    band_bytes = (rows * tile.block_m + columns * tile.block_n * b_copies) * k_row_bytes
    once_bytes = shape.a_bytes + shape.b_bytes
    repeated_bytes = max(0.0, math.ceil(output_tiles / in_flight) * band_bytes - once_bytes)
    reused_bytes = min(shape.a_bytes, shape.b_bytes)
    miss_share = min(1.0, max(0.0, 1.0 - l2_usable_bytes / reused_bytes))
    l2_load_bytes = output_tiles * (tile.block_m + tile.block_n) * k_row_bytes
    return min(l2_load_bytes, once_bytes + repeated_bytes * miss_share)


def _step_smem_bytes(tile: TileConfig, shape: GemmShape, architecture: str) -> float:
    """Shared-memory traffic of one block in one K step: the operand slabs are stored
    once, and each warp or thread reads the rows and columns of its output sub-tile."""
    bm, bn, bk = tile.block_m, tile.block_n, tile.block_k
    if shape.tensor_cores:
        rows, columns = TENSOR_SUB_TILE.get(architecture, TENSOR_SUB_TILE_DEFAULT)
    else:
        rows, columns = SIMT_SUB_TILE
    if rows is None or columns is None:
        sub_m, sub_n = min(rows or bm, bm), min(columns or bn, bn)
    else:
        sub_m, sub_n = min(rows, max(bm // 2, 1)), min(columns, max(bn // 2, 1))
    stored = (bm + bn) * bk
    read = bm * bn * bk * (1.0 / sub_m + 1.0 / sub_n)
    return (stored + read) * shape.element_bytes


def _gemm_kernel(shape: GemmShape, tile: TileConfig, split: int,
                 rates: DeviceRates, dtype: str) -> TiledKernel:
    """Build the tiled kernel that runs `shape` with `tile` and `split`."""
    size = shape.element_bytes
    bm, bn, bk = tile.block_m, tile.block_n, tile.block_k
    output_tiles = shape.batch * math.ceil(shape.m / bm) * math.ceil(shape.n / bn)
    resident = blocks_per_sm(tile.stages * (bm + bn) * bk * size,
                             bm * bn * ACCUMULATOR_BYTES, rates.gpu.smem_per_sm_kb)
    step_flops = 2.0 * bm * bn * bk
    multicast = B_MULTICAST_BLOCKS.get(rates.gpu.architecture, 1)
    output_bytes = float(shape.batch * shape.m * shape.n * size)
    reduction_bytes = 0.0
    if split > 1:
        # Each split writes fp32 partials, which a reduction reads back before it writes
        # the output.
        partial_bytes = split * shape.batch * shape.m * shape.n * ACCUMULATOR_BYTES
        reduction_bytes = partial_bytes + output_bytes
        output_bytes = float(partial_bytes)
    return TiledKernel(
        tile=tile,
        tiles=output_tiles * split,
        blocks_per_sm=resident,
        k_steps=float(math.ceil(math.ceil(shape.k / split) / bk)),
        step_tensor_flops=step_flops if shape.tensor_cores else 0.0,
        step_cuda_flops=0.0 if shape.tensor_cores else step_flops,
        step_sfu_ops=0.0,
        step_l2_bytes=(bm + bn / multicast) * bk * size,
        step_smem_bytes=_step_smem_bytes(tile, shape, rates.gpu.architecture),
        dram_load_bytes=_dram_load_bytes(shape, tile, split, rates.sms * resident,
                                         rates.l2_usable_bytes),
        output_bytes=output_bytes,
        tensor_flops_s=rates.tensor_flops_s(dtype) if shape.tensor_cores else 0.0,
        cuda_flops_s=rates.cuda_flops_s(dtype),
        reduction_bytes=reduction_bytes,
        split_k=split,
    )


def _candidate_tiles(op: Op, shape: GemmShape) -> list[TileConfig]:
    """Return the op's own tile when it names one, else the library tiles to try."""
    if op.tile is not None and op.tile.block_m and op.tile.block_n:
        return [op.tile]
    # A tile at least twice as tall or as wide as the problem only adds padding.
    fitting = [
        tile for tile in _MODEL_TILES[shape.tensor_cores]
        if tile.block_m < 2 * shape.m and tile.block_n < 2 * shape.n
    ]
    return fitting or [_MODEL_TILES[shape.tensor_cores][-1]]


def gemm_cost(op: Op, rates: DeviceRates) -> KernelCost | None:
    """Price a GEMM or convolution op, or return None when its geometry lacks m, n or k."""
    shape = gemm_shape(op, rates)
    if shape is None:
        return None
    if min(shape.m, shape.n) == 1:
        # Matrix-vector products run as GEMV kernels on the CUDA cores, streaming the
        # matrix once (estimate of what cuBLAS dispatches).
        return streaming_cost(replace(op, tensor_cores=False), rates, l2_reuse=False)
    costs = []
    for candidate in _candidate_tiles(op, shape):
        tile = _complete_tile(candidate, shape, rates)
        split = _split_k(tile, shape, rates)
        costs.append(evaluate_tiled(_gemm_kernel(shape, tile, split, rates, op.dtype), rates))
    fastest_s = min(cost.analytical_s for cost in costs)
    ties = [cost for cost in costs if cost.analytical_s <= fastest_s * (1 + TILE_TIE_SHARE)]
    return min(ties, key=_math_busy_s)


def _math_busy_s(cost: KernelCost) -> float:
    return cost.busy_s[MODULES.index("tensor")] + cost.busy_s[MODULES.index("fp32")]
