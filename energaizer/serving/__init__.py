"""Serving estimates: energy per request and per token of an LLM behind a serving engine."""

from energaizer.serving.estimate import ServingEstimate, estimate_serving
from energaizer.serving.model import VLLM_STEP_OVERHEAD_S, ServingModel
from energaizer.serving.spec import (
    LengthDistribution,
    ServingSpec,
    load_serving_spec,
    parse_length,
    spec_from_mapping,
)

__all__ = [
    "VLLM_STEP_OVERHEAD_S",
    "LengthDistribution",
    "ServingEstimate",
    "ServingModel",
    "ServingSpec",
    "estimate_serving",
    "load_serving_spec",
    "parse_length",
    "spec_from_mapping",
]
