"""The op classes every GPU kernel is sorted into."""

from __future__ import annotations

from enum import Enum


class OpClass(str, Enum):
    """Kind of work a kernel does; the performance and power models differ per class."""

    GEMM = "gemm"
    CONVOLUTION = "convolution"
    ATTENTION = "attention"
    ELEMENTWISE = "elementwise"
    REDUCTION = "reduction"
    NORMALIZATION = "normalization"
    SOFTMAX = "softmax"
    EMBEDDING = "embedding"
    MEMCPY = "memcpy"
    MEMSET = "memset"
    COMMUNICATION = "communication"
    OTHER = "other"

    def __str__(self) -> str:
        return self.value
