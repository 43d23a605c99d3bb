"""Read the tile configuration that GEMM, convolution and attention kernel names encode.

cuBLAS, cuDNN, CUTLASS and FlashAttention put the thread-block tile, the pipeline depth
and sometimes the warp layout into the kernel name. `parse_tile_config` reads them:

- cuBLAS and cuDNN: `volta_sgemm_128x64_nn`, `volta_scudnn_128x64_relu_interior_nn_v1`
  give the M x N tile. `ampere_bf16_s16816gemm_bf16_128x128_ldg8_f2f_stages_64x3_tn` adds
  `stages_KxS`, the K depth of a tile and the number of pipeline stages.
- cuBLAS/cuDNN XMMA: `sm80_xmma_gemm_..._tilesize128x128x32_stage4_warpsize2x2x1`.
- CUTLASS 2.x: `cutlass_80_tensorop_s1688gemm_64x64_16x6_nt_align4` is M x N, then K x
  stages. cuDNN's CUTLASS convolutions (`..._s1688fprop_optimized_tf32_64x128_32x3_...`)
  use the same order. Templates written out in full give `GemmShape<M, N, K>`.
- FlashAttention 2 (`flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4, ...>>`):
  the traits are head dimension, block M (queries), block N (keys) and warps.
- PyTorch memory-efficient attention (`fmha_cutlassF_f16_aligned_64x64_rf_sm80`): queries
  x keys per block.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

NAME_SOURCE = "kernel name"


@dataclass(frozen=True)
class TileConfig:
    """Tile sizes and pipeline settings of one kernel, with None for each value not given.

    For attention kernels `block_m` is the query block, `block_n` the key block and
    `block_k` the head dimension, the depth of the Q·K^T product that the tile computes.
    `warps` is the warp count per dimension as the source lists it, e.g. (2, 2, 1).
    `split_k` is the split-K factor. NOTE: none of the name formats read here states it,
    so it is always None for now. `source` names where the values come from, which is
    "kernel name" for every config that `parse_tile_config` returns.
    """

    block_m: int | None = None
    block_n: int | None = None
    block_k: int | None = None
    stages: int | None = None
    warps: tuple[int, ...] | None = None
    split_k: int | None = None
    source: str = NAME_SOURCE


# Name tokens between the kernel kind and the tile, such as "bf16_", "relu_", "winograd_".
_TOKENS = r"(?:[a-z][a-z0-9]*_)*?"

_FLASH_TRAITS = re.compile(
    r"Flash_(?:fwd|bwd)_kernel_traits<\s*(\d+),\s*(\d+),\s*(\d+),\s*(\d+)"
)
_XMMA_TILE = re.compile(r"tilesize(\d+)x(\d+)x(\d+)")
_XMMA_STAGES = re.compile(r"_stage(\d+)_")
_XMMA_WARPS = re.compile(r"_warpsize(\d+)x(\d+)x(\d+)")
_CUTLASS_TILE = re.compile(
    rf"(?<!fb)(?:gemm|fprop|dgrad|wgrad)_{_TOKENS}(\d+)x(\d+)_(\d+)x(\d+)(?:_|$)"
)
_CUBLAS_STAGES = re.compile(rf"(?<!fb)gemm_{_TOKENS}(\d+)x(\d+)_\w*?stages_(\d+)x(\d+)(?:_|$)")
_GEMM_SHAPE = re.compile(
    r"GemmShape<\s*(\d+),\s*(\d+),\s*(\d+)\s*>|GemmShapeILi(\d+)ELi(\d+)ELi(\d+)E"
)
_FMHA_TILE = re.compile(r"fmha_cutlass[FB]_\w*?_(\d+)x(\d+)(?:_|$)")
_MN_TILE = re.compile(rf"(?:(?<!fb)gemm|cudnn)_{_TOKENS}(\d+)x(\d+)(?:_|$)")


def _parse_flash_traits(name: str) -> TileConfig | None:
    match = _FLASH_TRAITS.search(name)
    if match is None:
        return None
    head_dim, block_m, block_n, warps = (int(group) for group in match.groups())
    return TileConfig(block_m=block_m, block_n=block_n, block_k=head_dim, warps=(warps,))


def _parse_xmma(name: str) -> TileConfig | None:
    tile = _XMMA_TILE.search(name)
    if tile is None:
        return None
    block_m, block_n, block_k = (int(group) for group in tile.groups())
    stages = _XMMA_STAGES.search(name)
    warps = _XMMA_WARPS.search(name)
    # NOTE: Hopper names give "warpgroupsize" (groups of 4 warps) instead of "warpsize".
    # That layout is not converted, so `warps` stays None for them.
    return TileConfig(
        block_m=block_m,
        block_n=block_n,
        block_k=block_k,
        stages=int(stages.group(1)) if stages else None,
        warps=tuple(int(group) for group in warps.groups()) if warps else None,
    )


def _parse_cutlass(name: str) -> TileConfig | None:
    match = _CUTLASS_TILE.search(name) or _CUBLAS_STAGES.search(name)
    if match is None:
        return None
    block_m, block_n, block_k, stages = (int(group) for group in match.groups())
    return TileConfig(block_m=block_m, block_n=block_n, block_k=block_k, stages=stages)


def _parse_gemm_shape(name: str) -> TileConfig | None:
    # The first GemmShape in a CUTLASS 2.x kernel template is the thread-block shape, and
    # the warp and instruction shapes follow it.
    match = _GEMM_SHAPE.search(name)
    if match is None:
        return None
    block_m, block_n, block_k = (int(group) for group in match.groups() if group is not None)
    return TileConfig(block_m=block_m, block_n=block_n, block_k=block_k)


def _parse_fmha(name: str) -> TileConfig | None:
    match = _FMHA_TILE.search(name)
    if match is None:
        return None
    block_m, block_n = (int(group) for group in match.groups())
    return TileConfig(block_m=block_m, block_n=block_n)


def _parse_mn_tile(name: str) -> TileConfig | None:
    # NOTE: the cuBLAS "sliced1x4" token (volta_sgemm_32x32_sliced1x4_tn) is not read,
    # because its meaning is undocumented and TileConfig has no field for it.
    match = _MN_TILE.search(name)
    if match is None:
        return None
    block_m, block_n = (int(group) for group in match.groups())
    return TileConfig(block_m=block_m, block_n=block_n)


# Most specific format first: a CUTLASS name also matches the plain M x N pattern.
_PARSERS: tuple[Callable[[str], TileConfig | None], ...] = (
    _parse_flash_traits,
    _parse_xmma,
    _parse_cutlass,
    _parse_gemm_shape,
    _parse_fmha,
    _parse_mn_tile,
)


def parse_tile_config(name: str) -> TileConfig | None:
    """Read the tile configuration from a kernel name.

    Returns None when the name encodes no tile, including for empty or non-string input.
    """
    if not isinstance(name, str) or not name:
        return None
    for parse in _PARSERS:
        config = parse(name)
        if config is not None:
            return config
    return None
