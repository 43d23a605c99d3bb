"""Derive a GPU profile for an unknown GPU from the deviceProperties a trace records."""

from __future__ import annotations

import re
from dataclasses import dataclass

from energaizer.errors import ProfileError
from energaizer.hardware.device_properties import (
    device_compute_capability,
    device_memory_gib,
    device_sm_count,
)
from energaizer.hardware.profiles import PEAK_TFLOPS_KEYS, GpuProfile, _is_number


@dataclass(frozen=True)
class _ArchitectureTypicals:
    """Typical figures of one compute capability, used to derive a profile from a trace.

    Rates are FLOP (OP for int8) per clock per SM. A rate is None where the unit is absent.
    """

    architecture: str
    flop_per_clock_per_sm: dict[str, int | None]
    base_clock_mhz: float
    boost_clock_mhz: float
    smem_per_sm_kb: float
    l2_cache_mb: float
    memory_type: str
    # (maximum memory in GiB, bandwidth in GB/s) tiers, tried in order.
    bandwidth_tiers: tuple[tuple[float, float], ...]
    power_w_per_sm: float
    pcie_gb_s: float


def _rates(**flop_per_clock: int) -> dict[str, int | None]:
    """Return a per-SM rate for every peak_tflops key, None for the keys not given."""
    return {key: flop_per_clock.get(key) for key in PEAK_TFLOPS_KEYS}


_NO_LIMIT = float("inf")

# Per-SM rates follow the NVIDIA architecture whitepapers (GP100, GV100, Turing, GA100,
# GA102, Ada, GH100) and the CUDA C++ Programming Guide's arithmetic throughput table.
# Tensor rates assume full-rate FP32 accumulate, as on data-centre and workstation boards.
# GeForce boards run FP16 and BF16 tensor work with FP32 accumulate at half that rate.
# Clocks, bandwidth and watts per SM are estimates taken from a representative board of each
# generation.
_TYPICALS: dict[tuple[int, int], _ArchitectureTypicals] = {
    (6, 0): _ArchitectureTypicals(
        architecture="pascal",
        flop_per_clock_per_sm=_rates(fp64=64, fp32=128, fp16=256),
        base_clock_mhz=1328,
        boost_clock_mhz=1480,
        smem_per_sm_kb=64,
        l2_cache_mb=4,
        memory_type="HBM2",
        bandwidth_tiers=((_NO_LIMIT, 732),),
        power_w_per_sm=4.5,
        pcie_gb_s=32,
    ),
    (6, 1): _ArchitectureTypicals(
        architecture="pascal",
        flop_per_clock_per_sm=_rates(fp64=8, fp32=256, fp16=4),
        base_clock_mhz=1480,
        boost_clock_mhz=1582,
        smem_per_sm_kb=96,
        l2_cache_mb=3,
        memory_type="GDDR5X",
        bandwidth_tiers=((_NO_LIMIT, 480),),
        power_w_per_sm=8.5,
        pcie_gb_s=32,
    ),
    (7, 0): _ArchitectureTypicals(
        architecture="volta",
        flop_per_clock_per_sm=_rates(fp64=64, fp32=128, fp16=256, fp16_tensor=1024),
        base_clock_mhz=1290,
        boost_clock_mhz=1530,
        smem_per_sm_kb=96,
        l2_cache_mb=6,
        memory_type="HBM2",
        bandwidth_tiers=((_NO_LIMIT, 900),),
        power_w_per_sm=3.75,
        pcie_gb_s=32,
    ),
    (7, 5): _ArchitectureTypicals(
        architecture="turing",
        flop_per_clock_per_sm=_rates(
            fp64=4, fp32=128, fp16=256, fp16_tensor=1024, int8_tensor=2048
        ),
        base_clock_mhz=1350,
        boost_clock_mhz=1650,
        smem_per_sm_kb=64,
        l2_cache_mb=6,
        memory_type="GDDR6",
        bandwidth_tiers=((_NO_LIMIT, 600),),
        power_w_per_sm=3.7,
        pcie_gb_s=32,
    ),
    (8, 0): _ArchitectureTypicals(
        architecture="ampere",
        flop_per_clock_per_sm=_rates(
            fp64=64,
            fp32=128,
            fp16=512,
            bf16=256,
            tf32_tensor=1024,
            fp16_tensor=2048,
            bf16_tensor=2048,
            int8_tensor=4096,
        ),
        base_clock_mhz=1095,
        boost_clock_mhz=1410,
        smem_per_sm_kb=164,
        l2_cache_mb=40,
        memory_type="HBM2e",
        bandwidth_tiers=((48, 1555), (_NO_LIMIT, 2039)),
        power_w_per_sm=3.7,
        pcie_gb_s=64,
    ),
    (8, 6): _ArchitectureTypicals(
        architecture="ampere",
        flop_per_clock_per_sm=_rates(
            fp64=4,
            fp32=256,
            fp16=256,
            bf16=256,
            tf32_tensor=512,
            fp16_tensor=1024,
            bf16_tensor=1024,
            int8_tensor=2048,
        ),
        base_clock_mhz=1305,
        boost_clock_mhz=1740,
        smem_per_sm_kb=100,
        l2_cache_mb=6,
        memory_type="GDDR6",
        bandwidth_tiers=((_NO_LIMIT, 700),),
        power_w_per_sm=3.6,
        pcie_gb_s=64,
    ),
    (8, 9): _ArchitectureTypicals(
        architecture="ada",
        flop_per_clock_per_sm=_rates(
            fp64=4,
            fp32=256,
            fp16=256,
            bf16=256,
            tf32_tensor=512,
            fp16_tensor=1024,
            bf16_tensor=1024,
            fp8_tensor=2048,
            int8_tensor=2048,
        ),
        base_clock_mhz=1110,
        boost_clock_mhz=2520,
        smem_per_sm_kb=100,
        l2_cache_mb=72,
        memory_type="GDDR6",
        bandwidth_tiers=((_NO_LIMIT, 860),),
        power_w_per_sm=3.0,
        pcie_gb_s=64,
    ),
    (9, 0): _ArchitectureTypicals(
        architecture="hopper",
        flop_per_clock_per_sm=_rates(
            fp64=128,
            fp32=256,
            fp16=512,
            bf16=512,
            tf32_tensor=2048,
            fp16_tensor=4096,
            bf16_tensor=4096,
            fp8_tensor=8192,
            int8_tensor=8192,
        ),
        base_clock_mhz=1590,
        boost_clock_mhz=1830,
        smem_per_sm_kb=228,
        l2_cache_mb=50,
        memory_type="HBM3",
        bandwidth_tiers=((85, 3350), (100, 3900), (_NO_LIMIT, 4800)),
        power_w_per_sm=5.3,
        pcie_gb_s=128,
    ),
    (10, 0): _ArchitectureTypicals(
        architecture="blackwell",
        flop_per_clock_per_sm=_rates(
            fp64=128,
            fp32=256,
            fp16=512,
            bf16=512,
            tf32_tensor=4096,
            fp16_tensor=8192,
            bf16_tensor=8192,
            fp8_tensor=16384,
            int8_tensor=16384,
        ),
        base_clock_mhz=1570,
        boost_clock_mhz=1860,
        smem_per_sm_kb=228,
        l2_cache_mb=126,
        memory_type="HBM3e",
        bandwidth_tiers=((_NO_LIMIT, 8000),),
        power_w_per_sm=6.8,
        pcie_gb_s=128,
    ),
    (12, 0): _ArchitectureTypicals(
        architecture="blackwell",
        flop_per_clock_per_sm=_rates(
            fp64=4,
            fp32=256,
            fp16=256,
            bf16=256,
            tf32_tensor=512,
            fp16_tensor=1024,
            bf16_tensor=1024,
            fp8_tensor=2048,
            int8_tensor=2048,
        ),
        base_clock_mhz=2000,
        boost_clock_mhz=2500,
        smem_per_sm_kb=100,
        l2_cache_mb=96,
        memory_type="GDDR7",
        bandwidth_tiers=((_NO_LIMIT, 1792),),
        power_w_per_sm=3.4,
        pcie_gb_s=128,
    ),
}
# Idle draw at maximum clock as a fraction of the power limit. The EnergAIzer ISPASS 2026
# measurements give 17 to 27% for A100 and H100 boards.
_IDLE_FRACTION_OF_LIMIT = 0.2


def _typicals_for(capability: tuple[int, int]) -> tuple[tuple[int, int], _ArchitectureTypicals]:
    """Return the table entry for `capability`, else the nearest lower one, else the lowest."""
    known = sorted(_TYPICALS)
    lower = [key for key in known if key <= capability]
    key = lower[-1] if lower else known[0]
    return key, _TYPICALS[key]


def _required_device_properties(props: dict) -> tuple[str, int, tuple[int, int], float]:
    name = str(props.get("name") or "").strip()
    sm_count = device_sm_count(props)
    capability = device_compute_capability(props)
    memory_gib = device_memory_gib(props)
    missing = [
        key
        for key, value in (
            ("numSms", sm_count),
            ("computeMajor", capability),
            ("totalGlobalMem", memory_gib),
        )
        if value is None
    ]
    if missing:
        raise ProfileError(
            f"deviceProperties of GPU {name!r} lack a valid {', '.join(missing)}, so no "
            "profile can be derived from the trace. Pass --gpu with a profile for this GPU."
        )
    return name, sm_count, capability, memory_gib


def profile_from_device_properties(props: dict) -> GpuProfile:
    """Derive a profile (derived=True) from a Kineto deviceProperties entry.

    SM count, compute capability, memory size and shared memory per SM come from the
    entry. Clocks, per-SM rates, L2 size, bandwidth and power are typical values for the
    compute capability, and every such figure is marked as an estimate in `sources`.
    """
    name, sm_count, capability, memory_gib = _required_device_properties(props)
    table_key, typicals = _typicals_for(capability)
    boost_mhz = typicals.boost_clock_mhz
    peak_tflops = {
        key: None if rate is None else sm_count * rate * boost_mhz / 1e6
        for key, rate in typicals.flop_per_clock_per_sm.items()
    }
    bandwidth_gb_s = next(
        gb_s for limit_gib, gb_s in typicals.bandwidth_tiers if memory_gib <= limit_gib
    )
    power_limit_w = round(sm_count * typicals.power_w_per_sm)
    smem_bytes = props.get("sharedMemPerMultiprocessor")
    smem_reported = _is_number(smem_bytes) and smem_bytes > 0
    smem_kb = smem_bytes / 1024 if smem_reported else typicals.smem_per_sm_kb
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return GpuProfile(
        id=slug or "unknown-gpu",
        name=name or "unnamed GPU",
        aliases=(name,) if name else (),
        vendor="nvidia",
        architecture=typicals.architecture,
        compute_capability=capability,
        sms=sm_count,
        base_clock_mhz=float(typicals.base_clock_mhz),
        boost_clock_mhz=float(boost_mhz),
        memory_gb=round(memory_gib, 1),
        memory_type=typicals.memory_type,
        memory_bandwidth_gb_s=float(bandwidth_gb_s),
        l2_cache_mb=float(typicals.l2_cache_mb),
        smem_per_sm_kb=float(smem_kb),
        peak_tflops=peak_tflops,
        power_limit_w=float(power_limit_w),
        idle_power_w=round(power_limit_w * _IDLE_FRACTION_OF_LIMIT, 1),
        nvlink_gb_s=None,
        pcie_gb_s=float(typicals.pcie_gb_s),
        sources=_derived_sources(capability, table_key, typicals, smem_reported),
        derived=True,
    )


def _derived_sources(
    capability: tuple[int, int],
    table_key: tuple[int, int],
    typicals: _ArchitectureTypicals,
    smem_reported: bool,
) -> dict[str, str]:
    """Return the `sources` entries of a derived profile."""
    table = "{}.{}".format(*table_key)
    typical = f"estimate from deviceProperties: typical value for compute capability {table}"
    if table_key != capability:
        typical += " ({}.{} is not in the table of typical values)".format(*capability)
    sources = {
        "compute_capability": "from deviceProperties: computeMajor and computeMinor",
        "sms": "from deviceProperties: numSms",
        "memory_gb": "from deviceProperties: totalGlobalMem in GiB",
        "smem_per_sm_kb": (
            "from deviceProperties: sharedMemPerMultiprocessor" if smem_reported else typical
        ),
        "memory_type": typical,
        "base_clock_mhz": typical,
        "boost_clock_mhz": typical,
        "l2_cache_mb": typical,
        "memory_bandwidth_gb_s": typical + " and this memory size; a rough estimate",
        "power_limit_w": (
            f"estimate from deviceProperties: numSms x {typicals.power_w_per_sm} W per SM, "
            f"typical for compute capability {table}"
        ),
        "idle_power_w": "estimate from deviceProperties: 20% of the estimated power limit",
        "nvlink_gb_s": (
            "estimate from deviceProperties: none assumed, because the trace does not report "
            "NVLink"
        ),
        "pcie_gb_s": typical,
    }
    for key, rate in typicals.flop_per_clock_per_sm.items():
        sources[f"peak_tflops.{key}"] = (
            f"estimate from deviceProperties: numSms x {rate} per clock per SM x "
            "boost_clock_mhz"
            if rate is not None
            else f"null: compute capability {table} has no such unit"
        )
    return sources
