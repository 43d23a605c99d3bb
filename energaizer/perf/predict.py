"""Entry points of the performance model: one op, or many ops at once as arrays.

The analytical cost of an op depends only on its shape, the GPU and the clock, and
workloads repeat shapes, so costs are cached under that key. Corrections and module
activities are applied afterwards, with numpy over all ops.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from energaizer.analyze.opclass import OpClass
from energaizer.analyze.tiles import TileConfig
from energaizer.hardware.profiles import GpuProfile
from energaizer.perf.attention import attention_cost
from energaizer.perf.clock import DeviceRates, device_rates, resolve_clock_mhz
from energaizer.perf.collective import collective_cost
from energaizer.perf.corrections import Corrections, corrections_for
from energaizer.perf.cost import LATENCY, LINK, MODULES, KernelCost
from energaizer.perf.gemm import gemm_cost
from energaizer.perf.memory import host_copy_cost, streaming_cost, uses_transcendental
from energaizer.workload.ops import Op

# The cache is emptied when it grows past this many entries.
CACHE_MAX_ENTRIES = 200_000
_cost_cache: dict[tuple, KernelCost] = {}


@dataclass
class OpPrediction:
    """Predicted time and module activity of one call of an op.

    time_s = l1 x prologue_s + l2 x main_s + l3 x epilogue_s + l4 with the op class's
    corrections. `activity` maps each of MODULES to its busy share of time_s, in [0, 1].
    `tiles`, `waves` and `tile` are None for ops without a tiled model. `waves` counts
    the last, partial wave as one, and `last_wave_fill` is the share of the block slots
    that wave uses (1.0 when the waves divide evenly).
    """

    time_s: float
    prologue_s: float
    main_s: float
    epilogue_s: float
    activity: dict[str, float]
    tiles: int | None
    waves: float | None
    tile: TileConfig | None
    split_k: int
    bound: str  # "compute", "memory", "latency" or "link"
    last_wave_fill: float | None = None


@dataclass
class PerfTable:
    """Per-call predictions for a list of ops, as arrays aligned with the list."""

    time_s: np.ndarray
    prologue_s: np.ndarray
    main_s: np.ndarray
    epilogue_s: np.ndarray
    activity: dict[str, np.ndarray]  # module -> busy share of time_s per op
    bound: list[str]


def kernel_cost(op: Op, rates: DeviceRates) -> KernelCost:
    """Compute the analytical cost of one call of `op`, without the cache."""
    cost: KernelCost | None = None
    if op.op_class in (OpClass.GEMM, OpClass.CONVOLUTION):
        cost = gemm_cost(op, rates)
    elif op.op_class == OpClass.ATTENTION:
        cost = attention_cost(op, rates)
    elif op.op_class == OpClass.COMMUNICATION:
        return collective_cost(op, rates)
    elif op.op_class == OpClass.MEMCPY and op.geometry.get("kind") == "host":
        return host_copy_cost(op, rates)
    # Streaming classes, OTHER, and tiled ops whose geometry is missing.
    return cost if cost is not None else streaming_cost(op, rates)


def clear_cache() -> None:
    """Empty the cache of analytical costs."""
    _cost_cache.clear()


def op_key(op: Op) -> tuple:
    """Return the fields of an op that the performance model's prediction depends on."""
    return _op_key(op)


def _op_key(op: Op) -> tuple:
    geometry = tuple(sorted(op.geometry.items()))
    return (op.op_class, op.dtype, op.flops, op.bytes, op.tensor_cores, op.tile, geometry,
            uses_transcendental(op))


def _gpu_key(gpu: GpuProfile) -> tuple:
    return (gpu.id, gpu.architecture, gpu.sms, gpu.boost_clock_mhz,
            gpu.memory_bandwidth_gb_s, gpu.l2_cache_mb, gpu.smem_per_sm_kb,
            tuple(sorted(gpu.peak_tflops.items())), gpu.nvlink_gb_s, gpu.pcie_gb_s)


def _costs(ops: list[Op], gpu: GpuProfile, clock_mhz: float | None) -> list[KernelCost]:
    """Return the analytical cost of each op, from the cache where possible."""
    clock = resolve_clock_mhz(gpu, clock_mhz)
    device_key = (_gpu_key(gpu), clock)
    rates: DeviceRates | None = None
    costs = []
    for op in ops:
        try:
            key = (_op_key(op), device_key)
            cost = _cost_cache.get(key)
        except TypeError:  # a geometry value that cannot be hashed, such as a list
            key, cost = None, None
        if cost is None:
            rates = rates or device_rates(gpu, clock)
            cost = kernel_cost(op, rates)
            if key is not None:
                if len(_cost_cache) >= CACHE_MAX_ENTRIES:
                    _cost_cache.clear()
                _cost_cache[key] = cost
        costs.append(cost)
    return costs


def _phase_matrix(costs: list[KernelCost]) -> np.ndarray:
    phases = [(cost.prologue_s, cost.main_s, cost.epilogue_s, 1.0) for cost in costs]
    return np.array(phases, dtype=float).reshape(len(costs), 4)


def analytical_phases(ops: list[Op], gpu: GpuProfile,
                      clock_mhz: float | None = None) -> np.ndarray:
    """Return an array of shape (len(ops), 4): prologue_s, main_s, epilogue_s and 1.0.

    Its product with (l1, l2, l3, l4) is the corrected time, so least squares on
    measured times fits the corrections.
    """
    return _phase_matrix(_costs(ops, gpu, clock_mhz))


def _bound(cost: KernelCost, phases: np.ndarray, coefficients: np.ndarray) -> str:
    """Return what limits the corrected time: the link, fixed latencies or the main phase."""
    if cost.limiter == LINK:
        return LINK
    fixed_s = coefficients[0] * phases[0] + coefficients[2] * phases[2] + coefficients[3]
    if fixed_s >= coefficients[1] * phases[1]:
        return LATENCY
    return cost.limiter


def predict_ops(ops: list[Op], gpu: GpuProfile, clock_mhz: float | None = None,
                corrections: Mapping[OpClass, Corrections] | None = None) -> PerfTable:
    """Predict the per-call time and module activity of every op in `ops`.

    `corrections` maps op classes to their fitted corrections. Classes it lacks, or all
    classes when it is None, use Corrections.default().
    """
    costs = _costs(ops, gpu, clock_mhz)
    phases = _phase_matrix(costs)
    by_key: dict[tuple[OpClass, bool], tuple] = {}
    for op in ops:
        key = (op.op_class, op.tensor_cores)
        if key not in by_key:
            by_key[key] = corrections_for(op.op_class, corrections, op.tensor_cores).as_tuple()
    coefficients = np.array([by_key[(op.op_class, op.tensor_cores)] for op in ops], dtype=float)
    coefficients = coefficients.reshape(len(ops), 4)
    time_s = (phases * coefficients).sum(axis=1)
    busy_s = np.array([cost.busy_s for cost in costs], dtype=float).reshape(len(ops), 6)
    shares = np.divide(busy_s, time_s[:, None], out=np.zeros_like(busy_s),
                       where=time_s[:, None] > 0)
    shares = np.clip(shares, 0.0, 1.0)
    return PerfTable(
        time_s=time_s,
        prologue_s=phases[:, 0].copy(),
        main_s=phases[:, 1].copy(),
        epilogue_s=phases[:, 2].copy(),
        activity={module: shares[:, index].copy() for index, module in enumerate(MODULES)},
        bound=[_bound(cost, phases[row], coefficients[row]) for row, cost in enumerate(costs)],
    )


def predict_op(op: Op, gpu: GpuProfile, clock_mhz: float | None = None,
               corrections: Mapping[OpClass, Corrections] | None = None) -> OpPrediction:
    """Predict the time and module activity of one call of `op`."""
    table = predict_ops([op], gpu, clock_mhz, corrections)
    (cost,) = _costs([op], gpu, clock_mhz)
    return OpPrediction(
        time_s=float(table.time_s[0]),
        prologue_s=float(table.prologue_s[0]),
        main_s=float(table.main_s[0]),
        epilogue_s=float(table.epilogue_s[0]),
        activity={module: float(values[0]) for module, values in table.activity.items()},
        tiles=cost.tiles,
        waves=cost.waves,
        tile=cost.tile,
        split_k=cost.split_k,
        bound=table.bound[0],
        last_wave_fill=cost.last_wave_fill,
    )
