"""Capture the GPU ops of a Hugging Face model without weights, a GPU or a download.

`capture_model` builds the model from its config on PyTorch's meta device, where tensors
have shapes and dtypes but no data, runs one pass and records every aten call with a
TorchDispatchMode. `energaizer.workload.aten` maps each call to the kernels it launches.

What a pass runs, per phase:

* "prefill": the first step of generation. The KV cache is written and, as
  `generate()` does, logits are computed for the last position only.
* "forward": one plain forward that returns logits for every position (scoring,
  evaluation, encoders and image models).
* "decode": one new token per sequence against a KV cache that already contains `seq`
  tokens, so attention spans seq + 1 keys. The cache comes from an unrecorded prefill.
* "train": forward with the model's own loss, backward, and one step of
  `torch.optim.AdamW(foreach=True)`. The optimizer state is created by an unrecorded
  warm-up step, so the recorded step is a steady-state one. Weights, gradients and
  optimizer state all use the capture dtype.

Inputs carry no padding: no attention mask is passed, so the model takes the path it
takes for full, unpadded sequences. Image models take a batch of images of the config's
`image_size` (224 when the config has none), and ignore `seq`.

With the default attention, every `scaled_dot_product_attention` call is recorded as one
fused attention op (FlashAttention on a GPU). On the meta device PyTorch would otherwise
decompose it into matrix products and a softmax before the dispatch mode receives it. With
attention="eager", Hugging Face runs the matrix products and softmax itself, and they are
recorded as such.

Reading a tensor's value (`.item()`, `if tensor:`) is impossible on the meta device, so
the capture supplies the values of full, unpadded input: a bool that came from `all()`
is True, any other bool is False, an integer is 1 and a float 1.0.
`Workload.source["assumed_scalar_reads"]` counts these reads.

Capturing takes from 0.05 s to a few seconds, so each (model, phase, attention, dtype)
is captured at two probe shapes whose batch sizes and sequence lengths are distinct
primes. Every integer of every op is then written as coefficient x batch^i x
(seq + offset)^j with i and j in 0..2 and offset in -1..1, and the ops of another
(batch, seq) are computed from these expressions in milliseconds. Batch 1 has templates
of its own (see `_family`). Shapes a template does not cover, and models whose probes
do not fit, are captured directly. Templates are kept in memory and as JSON files under
ENERGAIZER_CACHE_DIR (default ~/.cache/energaizer/workloads); `templates.py` fits and
stores them, and `meta_run.py` builds the model and records a pass.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from energaizer.errors import InputError
from energaizer.workload import aten, meta_run, opspec, templates
from energaizer.workload.meta_run import (
    _RUNNERS,
    DTYPES,
    INSTALL_HINT,
    _ModelRunner,
    _runner_for,
    check_shape,
)
from energaizer.workload.presets import METADATA_KEY, load_model_config
from energaizer.workload.templates import (
    TEMPLATE_FORMAT,
    ShapeTemplate,
    _read_template,
    _write_template,
    fit_template,
)
from energaizer.workload.workload import Workload

logger = logging.getLogger(__name__)

PHASES = ("prefill", "forward", "decode", "train")
ATTENTION_MODES = ("default", "eager")
# Probe shapes of a template: distinct primes, so each power of batch and seq leaves a
# different trace in the recorded sizes.
PROBE_BATCHES = (13, 17)
PROBE_SEQS = (1031, 1033)


# ---------------------------------------------------------------------------------------
# Public entry point


def capture_model(config: dict[str, Any] | str | Path, *, batch: int, seq: int,
                  dtype: str = "bf16", phase: str = "prefill",
                  attention: str = "default") -> Workload:
    """Return the ops one pass of a model launches, in launch order, one Op per launch.

    `config` is a preset name, a path to a Hugging Face config.json, or the config as a
    dict. `phase` is prefill, forward, decode or train; `dtype` is bf16, fp16 or fp32;
    `attention` is "default" (fused scaled_dot_product_attention) or "eager". Raises
    InputError for invalid arguments, a model that cannot be built or captured, or when
    torch or transformers is not installed, and ProfileError for an unknown preset.
    """
    started = time.perf_counter()
    _check_arguments(batch, seq, dtype, phase, attention)
    request = _make_request(config, dtype, phase, attention)
    family = _family(batch)
    key = request.template_key(family)
    template = _TEMPLATES.get(key) or _read_template(key)
    runner = None
    if template is None:
        runner = _runner_for(request)
        runner.check_shape(batch, seq, phase)
        template = _build_template(runner, request, family)
        _TEMPLATES[key] = template
        _write_template(template)
    else:
        _TEMPLATES[key] = template
        check_shape(template.model, batch, seq, phase)
    if template.fitted and _template_covers(template.model, batch, seq):
        ops = template.instantiate(batch, seq)
        return _workload(request, template.model, ops, batch, seq, started,
                         capture="template", unmapped=template.unmapped,
                         assumed_scalar_reads=template.assumed_scalar_reads,
                         notes=template.notes, probes=template.probes)
    runner = runner or _runner_for(request)
    recorded = runner.capture(batch, seq, phase)
    ops = aten.build_ops(recorded.specs)
    reason = template.reason or ("the template does not cover a one-token sequence or "
                                 "one that reaches the sliding attention window")
    return _workload(request, runner.info, ops, batch, seq, started, capture="direct",
                     unmapped=dict(recorded.unmapped),
                     assumed_scalar_reads=recorded.assumed_scalar_reads,
                     notes=recorded.notes, template_reason=reason)


def clear_memory_cache() -> None:
    """Forget the templates and built models kept in this process."""
    _TEMPLATES.clear()
    _RUNNERS.clear()


def _check_arguments(batch: int, seq: int, dtype: str, phase: str, attention: str) -> None:
    for label, value in (("batch", batch), ("seq", seq)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"Invalid {label} {value!r}: expected a positive integer.")
    if dtype not in DTYPES:
        raise InputError(f"Invalid dtype {dtype!r} for a model capture; expected one of "
                         f"{', '.join(DTYPES)}.")
    if phase not in PHASES:
        raise InputError(f"Invalid phase {phase!r}; expected one of {', '.join(PHASES)}.")
    if attention not in ATTENTION_MODES:
        raise InputError(f"Invalid attention {attention!r}; expected one of "
                         f"{', '.join(ATTENTION_MODES)}.")


# ---------------------------------------------------------------------------------------
# What to capture


@dataclass(frozen=True)
class _Request:
    """A model config and the capture settings that a template depends on."""

    config_json: str  # the config without "_energaizer", as sorted JSON
    display_name: str
    origin: str  # the preset name, the file path, or "dict"
    dtype: str
    phase: str
    attention: str
    versions: tuple[str, str]  # torch, transformers

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.config_json)

    def template_key(self, family: str) -> str:
        """Return the name of the template of this request for a batch family."""
        payload = json.dumps({
            "format": TEMPLATE_FORMAT, "config": self.config_json, "dtype": self.dtype,
            "phase": self.phase, "attention": self.attention, "family": family,
            "torch": self.versions[0], "transformers": self.versions[1],
            "code": _code_fingerprint(),
        }, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _make_request(config: dict[str, Any] | str | Path, dtype: str, phase: str,
                  attention: str) -> _Request:
    if isinstance(config, dict):
        data = dict(config)
        metadata = data.get(METADATA_KEY) or {}
        origin = "dict"
        if not isinstance(data.get("model_type"), str):
            raise InputError('The model config has no "model_type" field, so the model class '
                             'is unknown. Add the Hugging Face model type, e.g. '
                             '"model_type": "llama".')
        display = metadata.get("name") or data["model_type"]
    elif isinstance(config, (str, Path)):
        data, display = load_model_config(config)
        origin = str(config)
    else:
        raise InputError(f"Invalid model config of type {type(config).__name__}: expected "
                         "a preset name, a config.json path or a dict.")
    data.pop(METADATA_KEY, None)
    try:
        config_json = json.dumps(data, sort_keys=True)
    except (TypeError, ValueError) as error:
        raise InputError(f"The config of {display} is not JSON-serializable: {error}.") from None
    return _Request(config_json, display, origin, dtype, phase, attention, _versions())


@functools.cache
def _versions() -> tuple[str, str]:
    """Return the installed torch and transformers versions without importing them."""
    found = []
    for package in ("torch", "transformers"):
        try:
            found.append(importlib.metadata.version(package))
        except importlib.metadata.PackageNotFoundError:
            raise InputError(f"Capturing a model needs torch and transformers, but "
                             f"{package} is not installed. {INSTALL_HINT}") from None
    return found[0], found[1]


@functools.cache
def _code_fingerprint() -> str:
    """Hash of the modules that decide what a capture records, so that templates cached
    by another version of them are not reused."""
    digest = hashlib.sha256()
    for module_file in (__file__, aten.__file__, opspec.__file__, meta_run.__file__,
                        templates.__file__):
        digest.update(Path(module_file).read_bytes())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------------------
# Model facts the templates need without rebuilding the model


def _template_covers(model: dict[str, Any], batch: int, seq: int) -> bool:
    """Return whether a template's expressions are valid at this shape.

    A one-token prefill takes other branches (no causal mask), and a sliding attention
    window changes the attention path once the keys reach it.
    """
    if model["kind"] != "text":
        return True
    window = model["attention_window"]
    return seq >= 2 and (window is None or seq + 1 < window)


def _family(batch: int) -> str:
    """Return the template family of a batch size.

    Batch 1 gets templates of its own because size-1 dimensions change which views are
    contiguous, and PyTorch skips the copy that makes a contiguous tensor contiguous.
    """
    return "single" if batch == 1 else "multi"


def _probe_points(model: dict[str, Any], family: str) -> list[tuple[int, int]] | None:
    """Return the two probe shapes of a template, or None when the model has no room for
    them (a very short position limit or attention window)."""
    batches = (1, 1) if family == "single" else PROBE_BATCHES
    if model["kind"] != "text":
        return [(batches[0], 1), (batches[1], 1)]
    limit = math.inf if model["max_positions"] is None else model["max_positions"] - 1
    if model["attention_window"] is not None:
        limit = min(limit, model["attention_window"] - 2)
    if limit >= PROBE_SEQS[1]:
        return list(zip(batches, PROBE_SEQS))
    primes = [n for n in range(int(limit), max(PROBE_BATCHES), -1) if _is_prime(n)][:2]
    if len(primes) < 2:
        return None
    return list(zip(batches, sorted(primes)))


def _is_prime(number: int) -> bool:
    if number < 2:
        return False
    return all(number % divisor for divisor in range(2, math.isqrt(number) + 1))


def _build_template(runner: _ModelRunner, request: _Request, family: str) -> ShapeTemplate:
    key = request.template_key(family)
    probes = _probe_points(runner.info, family)
    if probes is None:
        return ShapeTemplate(key, runner.info, [], None, None,
                             reason="the model has no room for two prime probe lengths")
    logger.info("Capturing %s %s at probe shapes %s to build a shape template.",
                request.display_name, request.phase, probes)
    first = runner.capture(*probes[0], request.phase)
    second = first if probes[1] == probes[0] else runner.capture(*probes[1], request.phase)
    template = fit_template(key, runner.info, probes, first, second)
    if not template.fitted:
        logger.info("No shape template for %s %s: %s. Every shape is captured directly.",
                    request.display_name, request.phase, template.reason)
    return template


_TEMPLATES: dict[str, ShapeTemplate] = {}


# ---------------------------------------------------------------------------------------
# The result


def _workload(request: _Request, model: dict[str, Any], ops: list, batch: int, seq: int,
              started: float, *, capture: str, unmapped: dict[str, int],
              assumed_scalar_reads: int, notes: list[str], probes: list | None = None,
              template_reason: str | None = None) -> Workload:
    source: dict[str, Any] = {
        "kind": "model", "model": request.display_name, "config": request.origin,
        "model_class": model["model_class"], "phase": request.phase, "batch": batch,
        "dtype": request.dtype, "attention": request.attention,
        "attention_implementation": model["attention_implementation"],
        "capture": capture, "unmapped_ops": dict(sorted(unmapped.items())),
        "assumed_scalar_reads": assumed_scalar_reads, "notes": list(notes),
        "torch": request.versions[0], "transformers": request.versions[1],
    }
    if model["kind"] == "image":
        height, width = model["image_size"]
        source["image_size"] = [height, width]
        source["seq"] = None
        source["note"] = (f"seq {seq} is ignored: {request.display_name} is an image model "
                          f"and each sample is one {model['num_channels']}x{height}x{width} "
                          "image.")
        shape = f"batch {batch} images {height}x{width}"
    else:
        source["seq"] = seq
        shape = f"batch {batch} seq {seq}"
    if probes is not None:
        source["template_probes"] = [list(point) for point in probes]
    if template_reason is not None:
        source["template_unavailable"] = template_reason
    source["capture_seconds"] = round(time.perf_counter() - started, 4)
    name = f"{request.display_name} {request.phase} {shape} {request.dtype}"
    return Workload(name, ops, source, eager_launches=True)

