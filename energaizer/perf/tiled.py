"""Time of a tiled kernel: thread blocks in waves, each block looping over K steps.

GEMM, implicit-GEMM convolution and FlashAttention share this shape. The grid's blocks
run in waves of (SMs x blocks per SM). Each wave has three phases: a prologue that waits
for the first pipeline stage, a main loop whose steps take the longer of the math and the
operand fetch, and an epilogue that writes the block's output. A partial last wave
leaves SMs idle, and its blocks get a larger share of DRAM bandwidth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from energaizer.analyze.tiles import TileConfig
from energaizer.perf.clock import DRAM_LATENCY_S, DeviceRates
from energaizer.perf.cost import (
    ADDRESS_MATH_SHARE,
    COMPUTE,
    MEMORY,
    KernelCost,
    busy_tuple,
)

# 65536 32-bit registers per SM, the regsPerMultiprocessor that CUDA reports for V100,
# RTX 2080 Ti, A100 and H100.
REGISTER_FILE_BYTES_PER_SM = 64 * 1024 * 4
# Accumulators take about two thirds of a block's registers, and operand fragments and
# addresses the rest (estimate).
ACCUMULATOR_REGISTER_SHARE = 2.0 / 3.0
# Tuned GEMM and attention kernels run one or two blocks per SM (estimate).
MAX_BLOCKS_PER_SM = 2
# Share of the tensor-core peak that a main loop with its operands ready sustains, the
# rest going to instruction issue and synchronization (estimate: the best cuBLAS GEMMs
# reach about 90% of peak).
TENSOR_ISSUE_EFFICIENCY = 0.92


def blocks_per_sm(smem_bytes: float, accumulator_bytes: float, smem_per_sm_kb: float) -> int:
    """Return how many blocks fit on one SM by shared memory and registers, 1 to
    MAX_BLOCKS_PER_SM. `accumulator_bytes` is the fp32 accumulator tile of one block."""
    by_smem = int(smem_per_sm_kb * 1024 // max(smem_bytes, 1.0))
    registers_bytes = accumulator_bytes / ACCUMULATOR_REGISTER_SHARE
    by_registers = int(REGISTER_FILE_BYTES_PER_SM // max(registers_bytes, 1.0))
    return max(1, min(MAX_BLOCKS_PER_SM, by_smem, by_registers))


@dataclass(slots=True)
class TiledKernel:
    """Launch shape and per-block work of a tiled kernel.

    `step_*` values are the work of one thread block in one main-loop step. `k_steps`
    is positive and may be fractional when blocks run different numbers of steps
    (causal attention), and is then their mean. Byte totals are for the whole grid.
    """

    tile: TileConfig  # block_m, block_n, block_k and stages all set
    tiles: int
    blocks_per_sm: int
    k_steps: float
    step_tensor_flops: float
    step_cuda_flops: float
    step_sfu_ops: float
    step_l2_bytes: float
    step_smem_bytes: float
    dram_load_bytes: float
    output_bytes: float
    tensor_flops_s: float  # whole-GPU rates for the kernel's dtype at the modeled clock
    cuda_flops_s: float
    # Bytes read and written by the pass that combines split-K or split-KV partial
    # results, 0 without a split.
    reduction_bytes: float = 0.0
    split_k: int = 1


@dataclass(slots=True)
class _Wave:
    prologue_s: float
    main_s: float
    epilogue_s: float
    math_limited: bool

    @property
    def total_s(self) -> float:
        return self.prologue_s + self.main_s + self.epilogue_s


def _rate_share_s(work: float, rate: float, share: float) -> float:
    """Return the seconds for `work` at 1 / `share` of `rate`, or 0 without work."""
    if work <= 0:
        return 0.0
    return work * share / rate


def _run_wave(kernel: TiledKernel, rates: DeviceRates, active: int) -> _Wave:
    """Return the phase times of one wave with `active` blocks in flight."""
    blocks_on_sm = min(kernel.blocks_per_sm, math.ceil(active / rates.sms))
    # A block gets 1 / (sms x blocks_on_sm) of each whole-GPU compute, L2 and shared-memory
    # rate.
    share = rates.sms * blocks_on_sm

    math_s = (
        _rate_share_s(kernel.step_tensor_flops, kernel.tensor_flops_s, share)
        / TENSOR_ISSUE_EFFICIENCY
        + _rate_share_s(kernel.step_cuda_flops, kernel.cuda_flops_s, share)
        + _rate_share_s(kernel.step_sfu_ops, rates.sfu_ops_s, share)
    )
    step_dram_bytes = kernel.dram_load_bytes / (kernel.tiles * kernel.k_steps)
    l2_s = kernel.step_l2_bytes * share / rates.l2_b_s
    smem_s = kernel.step_smem_bytes * share / rates.smem_b_s
    dram_s = step_dram_bytes * active / rates.dram_b_s
    memory_s = max(l2_s, smem_s, dram_s)

    # With `stages` buffers a block can keep stages - 1 loads in flight, so a step can't
    # be shorter than that share of the load latency.
    latency_floor_s = DRAM_LATENCY_S / max(kernel.tile.stages - 1, 1)
    step_s = max(math_s, memory_s, latency_floor_s)

    block_output_bytes = kernel.output_bytes / kernel.tiles
    epilogue_s = max(
        block_output_bytes * share / rates.l2_b_s,
        block_output_bytes * active / rates.dram_b_s,
    )
    return _Wave(
        prologue_s=DRAM_LATENCY_S + memory_s,
        main_s=kernel.k_steps * step_s,
        epilogue_s=epilogue_s,
        math_limited=math_s >= max(memory_s, latency_floor_s),
    )


def _busy_s(kernel: TiledKernel, rates: DeviceRates,
            sm_busy_s: float) -> tuple[float, ...]:
    """Return the seconds each module needs for the whole grid's work at its peak rate."""
    steps = kernel.tiles * kernel.k_steps
    written = kernel.output_bytes + kernel.reduction_bytes
    return busy_tuple(
        dram_s=(kernel.dram_load_bytes + written) / rates.dram_peak_b_s,
        l2_s=(steps * kernel.step_l2_bytes + written) / rates.l2_b_s,
        smem_s=steps * kernel.step_smem_bytes / rates.smem_b_s,
        tensor_s=_rate_share_s(steps * kernel.step_tensor_flops, kernel.tensor_flops_s, 1),
        fp32_s=_rate_share_s(steps * kernel.step_cuda_flops, kernel.cuda_flops_s, 1)
        + ADDRESS_MATH_SHARE * sm_busy_s,
        sfu_s=_rate_share_s(steps * kernel.step_sfu_ops, rates.sfu_ops_s, 1),
    )


def evaluate_tiled(kernel: TiledKernel, rates: DeviceRates) -> KernelCost:
    """Return the phase times and module busy times of one launch of `kernel`."""
    slots = rates.sms * kernel.blocks_per_sm
    full_waves, last_blocks = divmod(kernel.tiles, slots)
    waves = [(full_waves, _run_wave(kernel, rates, slots))] if full_waves else []
    if last_blocks:
        waves.append((1, _run_wave(kernel, rates, last_blocks)))
    prologue_s = sum(count * wave.prologue_s for count, wave in waves)
    main_s = sum(count * wave.main_s for count, wave in waves)
    epilogue_s = sum(count * wave.epilogue_s for count, wave in waves)
    if kernel.reduction_bytes > 0:
        # The split partials are combined in a separate pass over DRAM (estimate).
        epilogue_s += DRAM_LATENCY_S + kernel.reduction_bytes / rates.dram_b_s
    # Time with all SMs busy, counting a wave that keeps min(active, sms) of them busy as
    # that share of its duration.
    sm_busy_s = full_waves * waves[0][1].total_s if full_waves else 0.0
    if last_blocks:
        sm_busy_s += min(last_blocks, rates.sms) / rates.sms * waves[-1][1].total_s
    return KernelCost(
        prologue_s=prologue_s,
        main_s=main_s,
        epilogue_s=epilogue_s,
        busy_s=_busy_s(kernel, rates, sm_busy_s),
        limiter=COMPUTE if waves[0][1].math_limited else MEMORY,
        tiles=kernel.tiles,
        waves=float(full_waves + (1 if last_blocks else 0)),
        last_wave_fill=last_blocks / slots if last_blocks else 1.0,
        tile=kernel.tile,
        split_k=kernel.split_k,
    )
