"""The serving spec: which model serves on which GPUs, at what batch, with which lengths.

A spec comes from Python, from a YAML file (read with `yaml.safe_load`) or from CLI
options; options given on the command line override the file. Token lengths are either a
number or a distribution:

    prompt_tokens: 1000                                    # fixed
    prompt_tokens: {distribution: uniform, low: 200, high: 1800}
    prompt_tokens: {distribution: normal, mean: 1000, std: 300}
    prompt_tokens: {distribution: lognormal, mean: 1000, sigma: 0.8}
    prompt_tokens: [120, 800, 2400]                        # equally likely values
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from energaizer.errors import InputError
from energaizer.fileio import path_inside, read_yaml

DISTRIBUTIONS = ("fixed", "uniform", "normal", "lognormal", "values")
# Lengths are expected values over this many equal-probability quantiles of a continuous
# distribution. The quantile midpoints of a long-tailed lognormal miss its mean (by 3% at
# sigma 0.8), so its points are scaled to the exact mean.
QUANTILE_POINTS = 16
DEFAULT_DTYPE = "bf16"
DTYPES = ("bf16", "fp16", "fp32", "fp8")
# More KV-cache sample points than this add nothing to the midpoint rule's accuracy.
MAX_CACHE_POINTS = 1000
# A lognormal sigma above this puts nearly all of the mean in a vanishing tail.
MAX_LOGNORMAL_SIGMA = 5.0
DEFAULT_GPU = "h100-sxm5-80gb"
SPEC_KEYS = ("model", "gpu", "num_gpus", "batch", "prompt_tokens", "output_tokens", "dtype",
             "clock_mhz", "power_limit_w", "calibration", "step_overhead_s", "cache_points",
             "time_corrections", "prefix_cache_hit_rate")
TIME_CORRECTIONS = ("calibration", "none")


@dataclass(frozen=True)
class LengthDistribution:
    """A token-length distribution; `points` and `weights` give its discrete form."""

    kind: str
    parameters: tuple[tuple[str, float], ...]
    points: tuple[float, ...]
    weights: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.dot(self.points, self.weights))

    def describe(self) -> dict[str, Any]:
        """Return the distribution as plain data, with its mean in tokens."""
        return {"distribution": self.kind, **dict(self.parameters), "mean": self.mean}


def fixed_length(tokens: float) -> LengthDistribution:
    """A length that is always `tokens`."""
    return LengthDistribution("fixed", (("value", float(tokens)),), (float(tokens),), (1.0,))


def parse_length(value: Any, name: str) -> LengthDistribution:
    """Parse a length given as a number, a list of values or a distribution mapping.

    Raises InputError naming `name` when the value is invalid. Continuous distributions
    are clipped at 1 token.
    """
    if isinstance(value, LengthDistribution):
        return value
    if isinstance(value, bool):
        raise InputError(f"{name} must be a number of tokens or a distribution, got {value!r}.")
    if isinstance(value, (int, float)):
        _check_positive(value, name, "value")
        return fixed_length(value)
    if isinstance(value, (list, tuple)):
        return _values_length(value, name)
    if isinstance(value, dict):
        return _distribution_length(value, name)
    raise InputError(f"{name} must be a number of tokens, a list of values or a mapping with "
                     f"a 'distribution' key, got {type(value).__name__}.")


def _values_length(values: list | tuple, name: str) -> LengthDistribution:
    if not values:
        raise InputError(f"{name} lists no values; give at least one token count.")
    for item in values:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise InputError(f"{name} values must be numbers of tokens, got {item!r}.")
        _check_positive(item, name, "value")
    points = tuple(float(item) for item in values)
    weights = tuple(1.0 / len(points) for _ in points)
    return LengthDistribution("values", (("count", float(len(points))),), points, weights)


def _distribution_length(mapping: dict, name: str) -> LengthDistribution:
    kind = mapping.get("distribution", "fixed")
    if kind not in DISTRIBUTIONS:
        raise InputError(f"{name}: distribution {kind!r} is invalid; expected one of "
                         f"{', '.join(DISTRIBUTIONS)}.")
    if kind == "values":
        return _values_length(mapping.get("values") or [], name)
    required = {"fixed": ("value",), "uniform": ("low", "high"), "normal": ("mean", "std"),
                "lognormal": ("mean", "sigma")}[kind]
    missing = [key for key in required if key not in mapping]
    if missing:
        raise InputError(f"{name}: a {kind} distribution needs {', '.join(required)}; "
                         f"missing {', '.join(missing)}.")
    numbers = {}
    for key in required:
        item = mapping[key]
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item):
            raise InputError(f"{name}: {key} must be a finite number, got {item!r}.")
        numbers[key] = float(item)
    if kind == "fixed":
        _check_positive(numbers["value"], name, "value")
        return fixed_length(numbers["value"])
    return _continuous_length(kind, numbers, name)


def _continuous_length(kind: str, numbers: dict[str, float], name: str) -> LengthDistribution:
    if kind == "uniform":
        if not 0 < numbers["low"] <= numbers["high"]:
            raise InputError(f"{name}: uniform needs 0 < low <= high, got low "
                             f"{numbers['low']:g} and high {numbers['high']:g}.")
        frozen = stats.uniform(numbers["low"], numbers["high"] - numbers["low"])
    elif kind == "normal":
        _check_positive(numbers["mean"], name, "mean")
        if numbers["std"] < 0:
            raise InputError(f"{name}: std must be at least 0, got {numbers['std']:g}.")
        frozen = stats.norm(numbers["mean"], numbers["std"])
    else:
        # `mean` is the mean of the lengths, not of their logarithm, so the median is
        # mean / exp(sigma^2 / 2).
        _check_positive(numbers["mean"], name, "mean")
        if not 0 <= numbers["sigma"] <= MAX_LOGNORMAL_SIGMA:
            raise InputError(f"{name}: sigma must be from 0 to {MAX_LOGNORMAL_SIGMA:g}, got "
                             f"{numbers['sigma']:g}.")
        median = numbers["mean"] / math.exp(0.5 * numbers["sigma"] ** 2)
        frozen = stats.lognorm(s=max(numbers["sigma"], 1e-12), scale=median)
    probabilities = (np.arange(QUANTILE_POINTS) + 0.5) / QUANTILE_POINTS
    points = frozen.ppf(probabilities)
    if kind == "lognormal":
        points = points * numbers["mean"] / points.mean()
    points = np.maximum(points, 1.0)
    weights = np.full(QUANTILE_POINTS, 1.0 / QUANTILE_POINTS)
    return LengthDistribution(kind, tuple(numbers.items()), tuple(points.tolist()),
                              tuple(weights.tolist()))


def _is_number(value: Any) -> bool:
    """Return whether `value` is a finite int or float (bools excluded)."""
    return (not isinstance(value, bool) and isinstance(value, (int, float))
            and math.isfinite(value))


def _check_positive(value: float, name: str, key: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 1):
        raise InputError(f"{name}: {key} must be at least 1 token, got {value!r}.")


@dataclass(frozen=True)
class ServingSpec:
    """An LLM served by an engine with continuous batching, such as vLLM.

    `batch` is the average number of requests in flight (sequences per decode step).
    `num_gpus` GPUs run the model with tensor parallelism. `step_overhead_s` is the CPU
    time per engine step while the GPU waits; None selects VLLM_STEP_OVERHEAD_S.
    `cache_points` is how many KV-cache lengths the decode estimate samples.
    `time_corrections` is "none" for the analytical kernel times alone (the default:
    engines such as vLLM replay decode steps as CUDA graphs of their own kernels), or
    "calibration" to apply the calibration's fitted corrections, which were measured on
    eagerly launched PyTorch models.
    `prefix_cache_hit_rate` is the share of prompt tokens whose keys and values the
    engine finds in its prefix cache (a shared system prompt, the earlier turns of a
    conversation): prefill computes only the other tokens, which attend over the whole
    prompt, and decode still reads the whole KV cache.
    """

    model: str
    gpu: str = DEFAULT_GPU
    num_gpus: int = 1
    batch: int = 1
    prompt_tokens: LengthDistribution = field(default_factory=lambda: fixed_length(1000))
    output_tokens: LengthDistribution = field(default_factory=lambda: fixed_length(300))
    dtype: str = DEFAULT_DTYPE
    clock_mhz: float | None = None
    power_limit_w: float | None = None
    calibration: str | None = None
    step_overhead_s: float | None = None
    cache_points: int = 5
    time_corrections: str = "none"
    prefix_cache_hit_rate: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompt_tokens", parse_length(self.prompt_tokens, "prompt_tokens"))
        object.__setattr__(self, "output_tokens", parse_length(self.output_tokens, "output_tokens"))
        for name in ("num_gpus", "batch", "cache_points"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a whole number of at least 1, got {value!r}.")
        if not isinstance(self.model, str) or not self.model:
            raise InputError("The serving spec names no model; set model to a preset name "
                             "or a config.json path.")
        if not isinstance(self.gpu, str) or not self.gpu:
            raise InputError(f"gpu must be a GPU profile id or name, got {self.gpu!r}.")
        if self.cache_points > MAX_CACHE_POINTS:
            raise InputError(f"cache_points must be at most {MAX_CACHE_POINTS}, got "
                             f"{self.cache_points}.")
        if self.time_corrections not in TIME_CORRECTIONS:
            raise InputError(f"time_corrections {self.time_corrections!r} is invalid; expected "
                             f"{' or '.join(TIME_CORRECTIONS)}.")
        if self.dtype not in DTYPES:
            raise InputError(f"dtype {self.dtype!r} is invalid; expected one of "
                             f"{', '.join(DTYPES)}.")
        for name in ("clock_mhz", "power_limit_w"):
            value = getattr(self, name)
            if value is not None and not (_is_number(value) and value > 0):
                raise InputError(f"{name} must be a positive finite number, got {value!r}.")
        rate = self.prefix_cache_hit_rate
        if not (_is_number(rate) and 0 <= rate < 1):
            raise InputError(f"prefix_cache_hit_rate must be a share from 0 up to but not "
                             f"including 1, got {rate!r}.")
        overhead = self.step_overhead_s
        if overhead is not None and not (_is_number(overhead) and overhead >= 0):
            raise InputError(f"step_overhead_s must be a finite number of seconds of at least "
                             f"0, got {overhead!r}.")

    def with_overrides(self, **overrides: Any) -> ServingSpec:
        """Return a copy with every override that is not None applied."""
        given = {key: value for key, value in overrides.items() if value is not None}
        return replace(self, **given)

    def describe(self) -> dict[str, Any]:
        """Return the spec as plain data for the estimate's `source`."""
        return {
            "model": self.model, "gpu": self.gpu, "num_gpus": self.num_gpus,
            "batch": self.batch, "prompt_tokens": self.prompt_tokens.describe(),
            "output_tokens": self.output_tokens.describe(), "dtype": self.dtype,
            "time_corrections": self.time_corrections,
            "prefix_cache_hit_rate": self.prefix_cache_hit_rate,
        }


def spec_from_mapping(data: dict[str, Any], origin: str = "serving spec") -> ServingSpec:
    """Build a ServingSpec from a mapping, rejecting unknown keys."""
    if not isinstance(data, dict):
        raise InputError(f"{origin} must be a YAML mapping, not {type(data).__name__}.")
    unknown = sorted(set(data) - set(SPEC_KEYS))
    if unknown:
        raise InputError(f"{origin} has unknown keys {', '.join(unknown)}; expected "
                         f"{', '.join(SPEC_KEYS)}.")
    if "model" not in data:
        raise InputError(f"{origin} names no model; add model: with a preset name.")
    return ServingSpec(**data)


def _names_a_file(model: Any) -> bool:
    """Return whether a spec's model value is a config file path rather than a preset."""
    return isinstance(model, str) and (model.endswith(".json") or "/" in model
                                       or "\\" in model)


def load_serving_spec(path: str | Path, **overrides: Any) -> ServingSpec:
    """Read a serving spec YAML file; keyword overrides that are not None win."""
    path = Path(path)
    data = read_yaml(path, "serving spec")
    if data is None:
        data = {}
    if isinstance(data, dict) and data.get("calibration") is not None:
        data = dict(data)
        data["calibration"] = str(path_inside(path.parent, str(data["calibration"]),
                                              f"Serving spec {path}: calibration"))
    if isinstance(data, dict) and _names_a_file(data.get("model")):
        data = dict(data)
        data["model"] = str(path_inside(path.parent, data["model"],
                                        f"Serving spec {path}: model"))
    if isinstance(data, dict):
        data.update({key: value for key, value in overrides.items() if value is not None})
    return spec_from_mapping(data, origin=f"Serving spec {path}")
