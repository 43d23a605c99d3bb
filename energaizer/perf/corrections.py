"""Correction terms that scale the analytical phases to measured kernel times.

Measured time t = l1 x prologue_s + l2 x main_s + l3 x epilogue_s + l4, with one set of
non-negative factors per op class, fitted by least squares on measurements.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from energaizer.analyze.opclass import OpClass


@dataclass(frozen=True)
class Corrections:
    """Factors l1 to l3 on the prologue, main and epilogue times, and l4, the setup cost
    of one launch in seconds. All are finite and >= 0."""

    prologue: float = 1.0  # l1
    main: float = 1.0  # l2
    epilogue: float = 1.0  # l3
    fixed_s: float = 2.0e-6  # l4, estimate for an uncalibrated GPU

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise TypeError(f"Invalid correction {name}={value!r}: expected a number.")
            if not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"Invalid correction {name}={value!r}: expected a finite number >= 0."
                )

    @classmethod
    def default(cls) -> Corrections:
        """Return the uncalibrated corrections: phases as modeled plus 2 us per launch."""
        return cls()

    def to_dict(self) -> dict[str, float]:
        """Return the factors keyed by field name."""
        return {name: float(value) for name, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, float]) -> Corrections:
        """Build corrections from a mapping like the one to_dict returns. Absent keys
        keep their defaults."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"Unknown correction keys {unknown}. Expected some of {sorted(known)}."
            )
        return cls(**dict(data))

    def as_tuple(self) -> tuple[float, float, float, float]:
        """Return (l1, l2, l3, l4)."""
        return (self.prologue, self.main, self.epilogue, self.fixed_s)


_DEFAULT = Corrections()

# GEMM-like ops on CUDA cores (fp32 without TF32) can carry their own corrections under
# the key (op class, CUDA_CORE); they fall back to the op class's.
CUDA_CORE = "cuda_core"
_GEMM_LIKE = frozenset({OpClass.GEMM, OpClass.CONVOLUTION, OpClass.ATTENTION})

CorrectionKey = OpClass | tuple[OpClass, str]


def correction_key(op_class: OpClass, tensor_cores: bool) -> CorrectionKey:
    """Return the key an op's corrections are stored under."""
    if op_class in _GEMM_LIKE and not tensor_cores:
        return (op_class, CUDA_CORE)
    return op_class


def key_name(key: CorrectionKey) -> str:
    """Text form of a correction key, as written in calibration files."""
    return key.value if isinstance(key, OpClass) else f"{key[0].value}/{key[1]}"


def key_from_name(name: str) -> CorrectionKey:
    """Inverse of key_name; raises ValueError for an unknown class or suffix."""
    op_class, _, suffix = name.partition("/")
    if not suffix:
        return OpClass(op_class)
    if suffix != CUDA_CORE:
        raise ValueError(f"unknown correction key {name!r}")
    return (OpClass(op_class), CUDA_CORE)


def corrections_for(op_class: OpClass,
                    corrections: Mapping[CorrectionKey, Corrections] | None,
                    tensor_cores: bool = True) -> Corrections:
    """Return the corrections for an op of `op_class`, or the defaults when none are
    given. CUDA-core GEMM-like ops use their own key when present."""
    if corrections is None:
        return _DEFAULT
    key = correction_key(op_class, tensor_cores)
    if key in corrections:
        return corrections[key]
    return corrections.get(op_class, _DEFAULT)
