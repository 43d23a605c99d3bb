"""Energy of serving LLM requests with continuous batching, per request and per token.

A request costs its prefill plus its share of the decode steps it takes part in. Each
decode step runs `batch` sequences, reads the weights once for all of them and each
sequence's KV cache, and then waits for the engine's CPU work at idle power. A step's
energy, static and idle power included, is shared equally by the requests in flight.
The KV cache grows by one token per step, so the step cost is sampled at a few cache
lengths along a request's decode and averaged (midpoint rule).

Lengths given as distributions enter through their expected values: the prefill cost is
averaged over the prompt-length quantiles, and decode runs from the mean prompt length
for the mean number of output tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from energaizer.calibrate.profile import calibration_warnings, estimate_provenance
from energaizer.estimators.workload import UNCERTAINTY_BY_KIND
from energaizer.results import ClassEnergy, Estimate, GpuInfo
from energaizer.serving.layers import activation_dtype
from energaizer.serving.model import PhaseCost, ServingModel, cache_lengths
from energaizer.workload.ops import dtype_bytes
from energaizer.serving.spec import ServingSpec


@dataclass
class ServingEstimate:
    """A serving estimate: the estimate contract for one request's share of the GPUs,
    plus per-request and per-token figures.

    `estimate.energy_j` equals `energy_per_request_j`, and `estimate.duration_s` is the
    GPU time one request takes up (its prefill plus its share of the decode steps).
    Attributes of `estimate` are readable on this object too.
    """

    estimate: Estimate
    energy_per_request_j: float
    prefill_energy_j: float
    decode_energy_j: float
    energy_per_output_token_j: float
    output_tokens_per_s: float
    time_to_first_token_s: float
    time_per_output_token_s: float
    prefill_s: float  # GPU time of the mean request's prefill
    decode_step_s: float  # mean decode step, CPU time included
    decode_power_w: float  # mean power of all GPUs during decode steps
    prefill_power_w: float
    idle_power_w: float  # of all GPUs together
    step_overhead_s: float
    decode_points: list[dict[str, float]] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        # Only called for names this dataclass lacks: fall through to the estimate.
        if name == "estimate":
            raise AttributeError(name)
        return getattr(self.estimate, name)

    @property
    def request_latency_s(self) -> float:
        """Wall-clock time from a request's arrival to its last token, without queueing.
        `duration_s` is instead the GPU time the request takes up, shared with the batch."""
        return self.time_to_first_token_s + max(self.output_tokens - 1, 0.0) * (
            self.time_per_output_token_s)

    @property
    def prompt_tokens(self) -> float:
        return float(self.estimate.source["prompt_tokens"]["mean"])

    @property
    def output_tokens(self) -> float:
        return float(self.estimate.source["output_tokens"]["mean"])

    def to_dict(self) -> dict[str, Any]:
        """Return the estimate contract with the serving fields added."""
        data = self.estimate.to_dict()
        data.update({
            "energy_per_request_j": self.energy_per_request_j,
            "prefill_energy_j": self.prefill_energy_j,
            "decode_energy_j": self.decode_energy_j,
            "energy_per_output_token_j": self.energy_per_output_token_j,
            "output_tokens_per_s": self.output_tokens_per_s,
            "time_to_first_token_s": self.time_to_first_token_s,
            "time_per_output_token_s": self.time_per_output_token_s,
            "serving": {
                "request_latency_s": self.request_latency_s,
                "prefill_s": self.prefill_s,
                "decode_step_s": self.decode_step_s,
                "prefill_power_w": self.prefill_power_w,
                "decode_power_w": self.decode_power_w,
                "idle_power_w": self.idle_power_w,
                "step_overhead_s": self.step_overhead_s,
                "decode_points": self.decode_points,
            },
        })
        return data


def estimate_serving(spec: ServingSpec, model: ServingModel | None = None) -> ServingEstimate:
    """Estimate per-request energy, throughput and latency of serving `spec`.

    `model` reuses the phase costs of an earlier call with the same model, GPU, batch
    and dtype. Raises InputError (or a subclass) for an unknown model or GPU, a model
    that is not a dense decoder, or heads that do not split over the GPUs.
    """
    model = model or ServingModel(spec)
    prompt, output = spec.prompt_tokens, spec.output_tokens

    # Prefill: expected cost over the prompt-length distribution.
    prefill = _weighted([(weight, model.prefill(points))
                         for points, weight in zip(prompt.points, prompt.weights)])

    # Decode: mean step over the cache lengths a request passes through.
    lengths = cache_lengths(prompt.mean, output.mean, spec.cache_points)
    steps = [model.decode_step(length) for length in lengths]
    step = _weighted([(1.0 / len(steps), cost) for cost in steps])

    share = output.mean / spec.batch  # decode steps' worth of GPU time per request
    request = _weighted([(1.0, prefill), (share, step)])
    per_request_s = prefill.duration_s + share * step.duration_s
    serving = ServingEstimate(
        estimate=_request_estimate(spec, model, request),
        energy_per_request_j=request.energy_j,
        prefill_energy_j=prefill.energy_j,
        decode_energy_j=share * step.energy_j,
        energy_per_output_token_j=request.energy_j / output.mean,
        output_tokens_per_s=output.mean / per_request_s,
        time_to_first_token_s=prefill.duration_s + model.step_overhead_s,
        time_per_output_token_s=step.duration_s,
        prefill_s=prefill.duration_s,
        decode_step_s=step.duration_s,
        decode_power_w=step.avg_power_w,
        prefill_power_w=prefill.avg_power_w,
        idle_power_w=step.idle_power_w * spec.num_gpus,
        step_overhead_s=model.step_overhead_s,
        decode_points=[
            {"cache_tokens": float(length), "step_s": cost.duration_s,
             "step_energy_j": cost.energy_j, "avg_power_w": cost.avg_power_w}
            for length, cost in zip(lengths, steps)
        ],
    )
    return serving


def _weighted(parts: list[tuple[float, PhaseCost]]) -> PhaseCost:
    """Sum phase costs with weights: times, energies and per-class totals alike."""
    by_class: dict[str, list[float]] = {}
    for weight, cost in parts:
        for name, (kernels, time_s, energy_j) in cost.by_class.items():
            entry = by_class.setdefault(name, [0.0, 0.0, 0.0])
            entry[0] += weight * kernels
            entry[1] += weight * time_s
            entry[2] += weight * energy_j
    first = parts[0][1]
    return PhaseCost(
        duration_s=sum(weight * cost.duration_s for weight, cost in parts),
        energy_j=sum(weight * cost.energy_j for weight, cost in parts),
        busy_s=sum(weight * cost.busy_s for weight, cost in parts),
        idle_s=sum(weight * cost.idle_s for weight, cost in parts),
        idle_energy_j=sum(weight * cost.idle_energy_j for weight, cost in parts),
        clock_mhz=min(cost.clock_mhz for _, cost in parts),
        power_limit_w=first.power_limit_w,
        idle_power_w=first.idle_power_w,
        by_class={name: (int(k + 0.5), t, e) for name, (k, t, e) in by_class.items()},
        notes=_merged_notes([cost for _, cost in parts]),
    )


def _merged_notes(costs: list[PhaseCost]) -> list[str]:
    """Unique notes, with the power-capping notes of many runs folded into one."""
    capped = [cost for cost in costs if any(n.startswith("Power capping") for n in cost.notes)]
    notes = sorted({note for cost in costs for note in cost.notes
                    if not note.startswith("Power capping")})
    if capped:
        lowest = min(cost.clock_mhz for cost in capped)
        notes.insert(0, f"Power capping: some prefill or decode runs exceed the "
                        f"{costs[0].power_limit_w:.0f} W limit at the requested clock, so their "
                        f"clock was lowered, to {lowest:.0f} MHz at the lowest.")
    return notes


# Share of a GPU's memory that weights and KV cache may fill. The rest is for activations
# and the engine's workspace (vLLM's default gpu_memory_utilization is 0.9).
MEMORY_SHARE = 0.9


def _capacity_warnings(spec: ServingSpec, model: ServingModel) -> list[str]:
    """Return warnings for a setup no real deployment could run: weights and KV cache
    beyond the GPUs' memory, or requests longer than the model's context."""
    arch, profile = model.arch, model.profile
    weights_gb = arch.parameters * dtype_bytes(spec.dtype) / 1e9
    longest = max(spec.prompt_tokens.points) + max(spec.output_tokens.points)
    cache_gb = (spec.batch * (spec.prompt_tokens.mean + spec.output_tokens.mean)
                * arch.kv_cache_bytes_per_token(activation_dtype(spec.dtype)) / 1e9)
    capacity_gb = MEMORY_SHARE * profile.memory_gb * spec.num_gpus
    warnings = []
    if weights_gb + cache_gb > capacity_gb:
        warnings.append(
            f"The weights ({weights_gb:.0f} GB) and a KV cache of {cache_gb:.0f} GB for "
            f"{spec.batch:,} requests in flight, counting no prefix shared between them, "
            f"exceed {MEMORY_SHARE:.0%} of the memory of {spec.num_gpus} x {profile.id} "
            f"({capacity_gb:.0f} GB); a real deployment needs more GPUs or a smaller batch.")
    if arch.max_positions is not None and longest > arch.max_positions:
        warnings.append(
            f"The longest request ({longest:.0f} prompt and output tokens) exceeds the "
            f"{arch.max_positions:,}-token context of {arch.name}.")
    return warnings


def _request_estimate(spec: ServingSpec, model: ServingModel, request: PhaseCost) -> Estimate:
    """Build the estimate contract for one request's share of prefill and decode."""
    profile, calibration = model.profile, model.calibration
    warnings = list(request.notes) + _capacity_warnings(spec, model)
    warnings += calibration_warnings(calibration, profile)
    spread = UNCERTAINTY_BY_KIND.get(calibration.kind, 0.35)
    by_class = sorted(
        (ClassEnergy(name, kernels, time_s, energy_j)
         for name, (kernels, time_s, energy_j) in request.by_class.items()),
        key=lambda item: item.energy_j, reverse=True,
    )
    return Estimate(
        gpu=GpuInfo(name=profile.name, profile=profile.id, clock_mhz=request.clock_mhz,
                    power_limit_w=request.power_limit_w, idle_power_w=request.idle_power_w,
                    derived_profile=profile.derived),
        source={"kind": "serving", **spec.describe(), "engine": "vllm",
                "step_overhead_s": model.step_overhead_s, "cache_points": spec.cache_points},
        energy_j=request.energy_j,
        duration_s=request.duration_s,
        avg_power_w=request.avg_power_w,
        busy_s=request.busy_s,
        idle_s=request.idle_s,
        idle_energy_j=request.idle_energy_j,
        by_class=by_class,
        steps=[],
        top_kernels=[],
        provenance=estimate_provenance(calibration, warnings),
        uncertainty={"energy_j_low": request.energy_j * (1 - spread),
                     "energy_j_high": request.energy_j * (1 + spread)},
    )
