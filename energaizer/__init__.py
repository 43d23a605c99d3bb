"""Estimate and measure the energy, cost and carbon of GPU AI workloads.

The package imports nothing heavy at load time: the trace path needs only numpy, pandas
and msgspec, and torch is imported only by the model capture and calibration code.
"""

from __future__ import annotations

import logging

from energaizer.errors import (
    CheckFailedError,
    EnergaizerError,
    HardwareError,
    InputError,
    TraceError,
)

__version__ = "0.1.0"

__all__ = [
    "CheckFailedError",
    "EnergaizerError",
    "HardwareError",
    "InputError",
    "TraceError",
    "__version__",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())

# Bound last so that `energaizer.estimate` is the function, not the module of that name
# (the module stays importable as `from energaizer.estimate import ...`).
from energaizer.estimate import estimate  # noqa: E402

__all__ += ["estimate"]
