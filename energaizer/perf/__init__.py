"""Analytical performance model: per-call time, phases and module activity of ops."""

from energaizer.perf.corrections import Corrections
from energaizer.perf.cost import MODULES
from energaizer.perf.predict import (
    OpPrediction,
    PerfTable,
    analytical_phases,
    clear_cache,
    predict_op,
    predict_ops,
)

__all__ = [
    "MODULES",
    "Corrections",
    "OpPrediction",
    "PerfTable",
    "analytical_phases",
    "clear_cache",
    "predict_op",
    "predict_ops",
]
