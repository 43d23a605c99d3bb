"""Canonical names for the event categories Kineto has written over the years.

Older PyTorch releases wrote `Kernel`, `Operator`, `Runtime`, `Memcpy` and `Memset`;
newer ones write `kernel`, `cpu_op`, `cuda_runtime`, `gpu_memcpy` and `gpu_memset`, and
log driver-API launches (`cuLaunchKernel`) under `cuda_driver`.
"""

from __future__ import annotations

KERNEL = "kernel"
MEMCPY = "memcpy"
MEMSET = "memset"
RUNTIME = "runtime"
CPU_OP = "cpu_op"
USER_ANNOTATION = "user_annotation"
GPU_USER_ANNOTATION = "gpu_user_annotation"

# Categories of events that run on the GPU timeline.
GPU_ACTIVITY = frozenset({KERNEL, MEMCPY, MEMSET})

# Every raw `cat` value the analysis uses, with its canonical name.
RAW_TO_CANONICAL = {
    "kernel": KERNEL,
    "Kernel": KERNEL,
    "gpu_memcpy": MEMCPY,
    "Memcpy": MEMCPY,
    "gpu_memset": MEMSET,
    "Memset": MEMSET,
    "cuda_runtime": RUNTIME,
    "Runtime": RUNTIME,
    "cuda_driver": RUNTIME,
    "cpu_op": CPU_OP,
    "Operator": CPU_OP,
    "user_annotation": USER_ANNOTATION,
    "gpu_user_annotation": GPU_USER_ANNOTATION,
}


def canonical_category(raw_category: object) -> str | None:
    """Return the canonical category of a raw `cat` value, or None for categories the
    analysis does not use (flows, Python frames, instant events, metadata)."""
    if not isinstance(raw_category, str):
        return None
    return RAW_TO_CANONICAL.get(raw_category)
