"""Throughputs and latencies of a GPU's modules at one SM clock.

Compute rates (tensor cores, CUDA cores, special-function units) and the on-chip
bandwidths (L2, shared memory) scale with the SM clock. DRAM bandwidth does not, because
the memory runs on its own clock. Every per-clock figure below is an estimate unless a
source is named.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from energaizer.hardware.profiles import DTYPES, GpuProfile

# L2-to-SM bandwidth in bytes per clock per SM. Estimate: 48 from Ampere on (about 5 KB
# per clock over the A100's 108 SMs) and two thirds of that for older architectures.
L2_BYTES_PER_CLOCK_PER_SM = {"pascal": 32.0, "volta": 32.0, "turing": 32.0}
L2_BYTES_PER_CLOCK_PER_SM_DEFAULT = 48.0
# Shared memory has 32 banks of 4 bytes, each serving one access per clock (peak).
SMEM_BYTES_PER_CLOCK_PER_SM = 128.0
# Exponentials and other transcendental functions per clock per SM (estimate: 4 units in
# each of the 4 SM partitions).
SFU_OPS_PER_CLOCK_PER_SM = 16.0

# Share of peak DRAM bandwidth that a long streaming kernel sustains (estimate, 85-90%).
DRAM_EFFICIENCY = 0.88
# Round trip of a load from DRAM to an SM, which also sets how long a pipeline takes to
# fill (estimate within the 0.5 to 1 us range of HBM and GDDR boards).
DRAM_LATENCY_S = 0.6e-6
# Share of the L2 that holds data reused across thread blocks; the rest serves streaming
# traffic (estimate).
L2_USABLE_SHARE = 0.6
# NVIDIA quotes cache sizes in binary megabytes.
BYTES_PER_CACHE_MB = 1024 * 1024

# Dtypes that use tensor cores when the profile has one of these rates. fp8 falls back to
# the fp16 tensor rate on GPUs without fp8 tensor cores, as GpuProfile.peak_flops does.
_TENSOR_RATE_KEYS = {
    "tf32": ("tf32_tensor",),
    "fp16": ("fp16_tensor",),
    "bf16": ("bf16_tensor",),
    "fp8": ("fp8_tensor", "fp16_tensor"),
    "int8": ("int8_tensor",),
}


def resolve_clock_mhz(gpu: GpuProfile, clock_mhz: float | None) -> float:
    """Return the SM clock to model: `clock_mhz`, or the boost clock when it is None."""
    if clock_mhz is None:
        return float(gpu.boost_clock_mhz)
    clock = float(clock_mhz)
    if not math.isfinite(clock) or clock <= 0:
        raise ValueError(f"Invalid clock_mhz {clock_mhz!r}: expected a positive number of MHz.")
    return clock


def has_tensor_rate(gpu: GpuProfile, dtype: str) -> bool:
    """Return whether the GPU has tensor cores for `dtype`."""
    keys = _TENSOR_RATE_KEYS.get(dtype, ())
    return any(gpu.peak_tflops.get(key) is not None for key in keys)


def compute_dtype(dtype: str) -> str:
    """Map a storage dtype (int64, uint8, bool, ...) to the dtype whose CUDA-core rate
    prices its arithmetic: fp32 for any dtype the profiles give no rate for."""
    return dtype if dtype in DTYPES else "fp32"


@dataclass(frozen=True, eq=False)
class DeviceRates:
    """Whole-GPU throughputs at one SM clock."""

    gpu: GpuProfile
    clock_mhz: float
    sms: int
    clock_scale: float  # clock_mhz / boost_clock_mhz
    dram_peak_b_s: float
    dram_b_s: float  # sustained: peak x DRAM_EFFICIENCY
    l2_b_s: float
    smem_b_s: float
    sfu_ops_s: float
    l2_usable_bytes: float

    def tensor_flops_s(self, dtype: str) -> float:
        """Dense tensor-core rate for `dtype` at this clock, in FLOP/s."""
        return self.gpu.peak_flops(compute_dtype(dtype), True) * self.clock_scale

    def cuda_flops_s(self, dtype: str) -> float:
        """CUDA-core rate for `dtype` at this clock, in FLOP/s."""
        return self.gpu.peak_flops(compute_dtype(dtype), False) * self.clock_scale


def device_rates(gpu: GpuProfile, clock_mhz: float | None = None) -> DeviceRates:
    """Build the throughputs of `gpu` at `clock_mhz` (default: boost clock)."""
    clock = resolve_clock_mhz(gpu, clock_mhz)
    clock_hz = clock * 1e6
    l2_per_clock = L2_BYTES_PER_CLOCK_PER_SM.get(
        gpu.architecture, L2_BYTES_PER_CLOCK_PER_SM_DEFAULT
    )
    return DeviceRates(
        gpu=gpu,
        clock_mhz=clock,
        sms=gpu.sms,
        clock_scale=clock / gpu.boost_clock_mhz,
        dram_peak_b_s=gpu.memory_bandwidth_b_s,
        dram_b_s=gpu.memory_bandwidth_b_s * DRAM_EFFICIENCY,
        l2_b_s=l2_per_clock * gpu.sms * clock_hz,
        smem_b_s=SMEM_BYTES_PER_CLOCK_PER_SM * gpu.sms * clock_hz,
        sfu_ops_s=SFU_OPS_PER_CLOCK_PER_SM * gpu.sms * clock_hz,
        l2_usable_bytes=gpu.l2_cache_mb * BYTES_PER_CACHE_MB * L2_USABLE_SHARE,
    )
