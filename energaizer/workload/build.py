"""Build a workload from what a user names: a model preset or config with a shape, or an
op-list file."""

from __future__ import annotations

from pathlib import Path

from energaizer.workload.workload import Workload

# Vision models have no sequence length; the capture ignores this value for them.
IMAGE_MODEL_SEQ = 1


def model_workload(model: str, *, batch: int, seq: int | None, dtype: str, phase: str,
                   attention: str = "default") -> Workload:
    """Capture the ops of `model` (a preset name or a config.json path) for one pass."""
    from energaizer.workload.capture import capture_model

    return capture_model(model, batch=batch, seq=seq or IMAGE_MODEL_SEQ, dtype=dtype,
                         phase=phase, attention=attention)


def op_list_workload(path: str | Path) -> Workload:
    """Read an op-list JSON file."""
    from energaizer.workload.oplist import load_op_list

    return load_op_list(path)
