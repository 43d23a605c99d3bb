"""Time and energy of the two serving phases on a GPU profile: one request's prefill and
one decode step of the whole batch, each simulated from the ops the engine runs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from energaizer.calibrate.profile import Calibration, calibration_for
from energaizer.hardware.profiles import GpuProfile, load_profile
from energaizer.power.limits import check_operating_point
from energaizer.power.simulate import simulate_workload
from energaizer.serving.layers import (
    DenseArchitecture,
    check_tensor_parallel,
    decode_workload,
    dense_architecture,
    prefill_workload,
)
from energaizer.serving.spec import ServingSpec
from energaizer.workload.workload import Workload

# CPU time of one vLLM engine step during which the GPU waits: scheduling, building the
# step's input tensors and block tables, and handing sampled tokens back. Estimate: the
# ML.ENERGY v3 H100 runs of Llama-3.1-8B at 8 requests show a 7.3 ms median inter-token
# latency. Reading the 16 GB of weights at the 3.35 TB/s datasheet bandwidth takes at
# least 4.8 ms, so at most about 2.5 ms remain for everything else in a step. We assume
# half of that is CPU time, as one number for every model and batch size.
# NOTE: vLLM's asynchronous scheduling overlaps this time with the GPU and would remove
# it; the value is a guess for synchronous scheduling, not a measurement.
VLLM_STEP_OVERHEAD_S = 1.2e-3


@dataclass
class PhaseCost:
    """Time and energy of one phase run, summed over the GPUs of the tensor-parallel group.

    `duration_s`, `busy_s` and `idle_s` are wall-clock times of one GPU (the GPUs run in
    lockstep). `energy_j` and `idle_energy_j` sum every GPU. `by_class` maps each op
    class to (kernel launches on one GPU, busy seconds, joules over all GPUs).
    """

    duration_s: float
    energy_j: float
    busy_s: float
    idle_s: float
    idle_energy_j: float
    clock_mhz: float
    power_limit_w: float
    idle_power_w: float
    by_class: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def avg_power_w(self) -> float:
        """Mean power of all GPUs together: energy over duration."""
        return self.energy_j / self.duration_s if self.duration_s > 0 else 0.0


class ServingModel:
    """The model, GPU and calibration of a serving spec, with cached phase costs."""

    def __init__(self, spec: ServingSpec, calibration: Calibration | None = None) -> None:
        """`calibration` replaces the one `spec` names (its file, the shipped fit for the
        GPU, or the default), as fitting does when it tries coefficients."""
        self.spec = spec
        self.arch: DenseArchitecture = dense_architecture(spec.model)
        check_tensor_parallel(self.arch, spec.num_gpus)
        self.profile: GpuProfile = load_profile(spec.gpu)
        check_operating_point(self.profile, spec.clock_mhz, spec.power_limit_w)
        if calibration is None:
            calibration = calibration_for(self.profile, spec.calibration)
        if spec.time_corrections == "none":
            # The shipped corrections were fitted on eager PyTorch runs of six models on an
            # A100-PCIe at 900 MHz. Their fixed cost of 10 us per tensor-core GEMM, and
            # prologue and epilogue factors at the fit's bound of 3, absorb launch and
            # framework effects that CUDA-graph decode with the engine's kernels lacks.
            calibration = replace(calibration, corrections={})
        self.calibration: Calibration = calibration
        overhead = spec.step_overhead_s
        self.step_overhead_s = VLLM_STEP_OVERHEAD_S if overhead is None else float(overhead)
        self._prefill: dict[int, PhaseCost] = {}
        self._decode: dict[int, PhaseCost] = {}

    def prefill(self, prompt_tokens: float) -> PhaseCost:
        """Cost of one request's prefill, of the prompt tokens the prefix cache misses.
        Its engine step's CPU time is not counted here, because vLLM schedules prefill
        chunks into decode steps that already pay it."""
        prompt_tokens = max(int(prompt_tokens + 0.5), 1)
        cached = min(int(prompt_tokens * self.spec.prefix_cache_hit_rate + 0.5),
                     prompt_tokens - 1)
        if prompt_tokens not in self._prefill:
            workload = prefill_workload(self.arch, prompt_tokens, num_gpus=self.spec.num_gpus,
                                        dtype=self.spec.dtype, cached_tokens=cached)
            self._prefill[prompt_tokens] = self._simulate(workload, gap_s=0.0)
        return self._prefill[prompt_tokens]

    def decode_step(self, cache_tokens: float) -> PhaseCost:
        """Cost of one decode step of the whole batch at a KV cache of `cache_tokens`,
        including the engine's CPU time per step at idle power."""
        cache_tokens = max(int(cache_tokens + 0.5), 1)
        if cache_tokens not in self._decode:
            workload = decode_workload(self.arch, self.spec.batch, cache_tokens,
                                       num_gpus=self.spec.num_gpus, dtype=self.spec.dtype)
            self._decode[cache_tokens] = self._simulate(workload, gap_s=self.step_overhead_s)
        return self._decode[cache_tokens]

    def _simulate(self, workload: Workload, gap_s: float) -> PhaseCost:
        run = simulate_workload(workload, self.profile, self.calibration, self.spec.clock_mhz,
                                self.spec.power_limit_w)
        gpus = self.spec.num_gpus
        classes = np.array([workload.ops[i].op_class.value for i in run.op_index])
        energy = run.energy_per_launch_j
        by_class = {}
        for name in np.unique(classes):
            chosen = classes == name
            by_class[str(name)] = (int(chosen.sum()), float(run.time_s[chosen].sum()),
                                   float(energy[chosen].sum()) * gpus)
        idle_s = run.idle_s + gap_s
        return PhaseCost(
            duration_s=run.duration_s + gap_s,
            energy_j=(run.energy_j + run.idle_power_w * gap_s) * gpus,
            busy_s=run.busy_s,
            idle_s=idle_s,
            idle_energy_j=run.idle_power_w * idle_s * gpus,
            clock_mhz=run.clock_mhz,
            power_limit_w=run.power_limit_w,
            idle_power_w=run.idle_power_w,
            by_class=by_class,
            notes=list(run.notes),
        )


def cache_lengths(prompt_tokens: float, output_tokens: float, points: int) -> np.ndarray:
    """KV-cache lengths at the midpoints of `points` equal slices of a request's decode.

    The midpoint rule integrates a step cost that is linear in the cache length exactly.
    """
    fractions = (np.arange(points) + 0.5) / points
    return prompt_tokens + fractions * output_tokens
