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
ENERGAIZER_CACHE_DIR (default ~/.cache/energaizer/workloads).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import inspect
import json
import logging
import math
import os
import tempfile
import time
import weakref
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from energaizer.errors import InputError
from energaizer.workload import aten
from energaizer.workload.aten import OpSpec
from energaizer.workload.presets import METADATA_KEY, load_model_config
from energaizer.workload.workload import Workload

logger = logging.getLogger(__name__)

PHASES = ("prefill", "forward", "decode", "train")
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
ATTENTION_MODES = ("default", "eager")
DEFAULT_IMAGE_SIZE = 224
INSTALL_HINT = (
    'Install torch and transformers with pip install "energaizer[model]" or '
    "pip install torch transformers. CI installs torch with pip install torch==2.13.0."
)

# Probe shapes of a template: distinct primes, so each power of batch and seq leaves a
# different trace in the recorded sizes.
PROBE_BATCHES = (13, 17)
PROBE_SEQS = (1031, 1033)
TEMPLATE_FORMAT = 1
CACHE_ENV = "ENERGAIZER_CACHE_DIR"


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


def cache_dir() -> Path:
    """Return the folder of the on-disk template cache."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    return Path.home() / ".cache" / "energaizer" / "workloads"


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
    for module_file in (__file__, aten.__file__):
        digest.update(Path(module_file).read_bytes())
    return digest.hexdigest()[:16]


def _import_backends() -> tuple[Any, Any]:
    """Import torch and transformers, raising InputError with the install command."""
    try:
        import torch
    except ImportError as error:
        raise InputError(f"Capturing a model needs torch, which failed to import ({error}). "
                         f"{INSTALL_HINT}") from None
    try:
        import transformers
    except ImportError as error:
        raise InputError(f"Capturing a model needs transformers, which failed to import "
                         f"({error}). {INSTALL_HINT}") from None
    return torch, transformers


# ---------------------------------------------------------------------------------------
# Model facts the templates need without rebuilding the model


def check_shape(model: dict[str, Any], batch: int, seq: int, phase: str) -> None:
    """Raise InputError when the model cannot run this phase at this shape."""
    name = model["name"]
    if phase == "decode" and model["kind"] != "text":
        raise InputError(f"{name} is an image model; decode needs a text decoder with a "
                         "KV cache. Use phase prefill, forward or train.")
    if phase == "decode" and not model["can_generate"]:
        raise InputError(f"{name} ({model['model_class']}) does not generate text, so it "
                         "has no decode phase. Use phase forward or train.")
    if model["kind"] != "text":
        return
    positions = seq + 1 if phase == "decode" else seq
    limit = model["max_positions"]
    if limit is not None and positions > limit:
        raise InputError(f"{name} supports at most {limit} positions, but {phase} at seq "
                         f"{seq} needs {positions}. Use a shorter seq.")


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


# ---------------------------------------------------------------------------------------
# Shape templates


class Expression(NamedTuple):
    """An integer of an op as coefficient x batch^batch_power x (seq + seq_offset)^seq_power."""

    coefficient: int
    batch_power: int
    seq_power: int
    seq_offset: int

    def evaluate(self, batch: int, seq: int) -> int:
        return self.coefficient * batch ** self.batch_power * (seq + self.seq_offset) ** self.seq_power


def fit_integer(first: int, second: int, probes: list[tuple[int, int]], *,
                uses_batch: bool = True, uses_seq: bool = True) -> Expression | None:
    """Return the expression that gives `first` at probes[0] and `second` at probes[1].

    Candidates are tried from the simplest (a constant) upwards, and the first one that
    reproduces both values exactly is returned; None when no candidate does. A template
    whose probes share one batch size (or one seq) passes uses_batch (or uses_seq) False,
    so that no power of the shared size is fitted.
    """
    if first == second:
        return Expression(first, 0, 0, 0)
    (batch1, seq1), (batch2, seq2) = probes
    batch_powers = range(3) if uses_batch else range(1)
    seq_powers = range(3) if uses_seq else range(1)
    for offset in (0, 1, -1):
        for batch_power in batch_powers:
            for seq_power in seq_powers:
                if (batch_power, seq_power) == (0, 0) or (seq_power == 0 and offset != 0):
                    continue
                divisor1 = batch1 ** batch_power * (seq1 + offset) ** seq_power
                divisor2 = batch2 ** batch_power * (seq2 + offset) ** seq_power
                if divisor1 <= 0 or divisor2 <= 0:
                    continue
                if first % divisor1 or second % divisor2:
                    continue
                if first // divisor1 == second // divisor2:
                    return Expression(first // divisor1, batch_power, seq_power, offset)
    return None


def _fit_value(first: Any, second: Any, probes: list[tuple[int, int]],
               uses: tuple[bool, bool]) -> Any:
    """Return `first` with every int replaced by its Expression; raise ValueError when the
    two values differ in anything an expression cannot describe."""
    if isinstance(first, bool) or isinstance(second, bool):
        if first is not second:
            raise ValueError(f"{first!r} != {second!r}")
        return first
    if isinstance(first, int) and isinstance(second, int):
        expression = fit_integer(first, second, probes, uses_batch=uses[0], uses_seq=uses[1])
        if expression is None:
            raise ValueError(f"no expression gives {first} and {second}")
        return expression
    if isinstance(first, tuple) and isinstance(second, tuple):
        if len(first) != len(second):
            raise ValueError(f"{len(first)} tensors != {len(second)} tensors")
        return tuple(_fit_value(a, b, probes, uses) for a, b in zip(first, second))
    if first != second:
        raise ValueError(f"{first!r} != {second!r}")
    return first


def _fit_spec(first: OpSpec, second: OpSpec, probes: list[tuple[int, int]],
              uses: tuple[bool, bool]) -> OpSpec:
    if first[:4] != second[:4]:
        raise ValueError(f"{first.kind} {first.name} != {second.kind} {second.name}")
    names = [name for name, _ in first.params]
    if names != [name for name, _ in second.params]:
        raise ValueError(f"parameters of {first.name} differ")
    params = tuple((name, _fit_value(a, b, probes, uses) if name not in _CALL_COUNTS else max(a, b))
                   for (name, a), (_, b) in zip(first.params, second.params))
    return first._replace(params=params)


# Call counts are not sizes: Python may branch on a shape and make a call more or fewer,
# so the template keeps the larger count instead of fitting an expression.
_CALL_COUNTS = frozenset({aten.CPU_CALLS, aten.MODULE_CALLS})


def _evaluate(value: Any, batch: int, seq: int) -> Any:
    if isinstance(value, Expression):
        return value.evaluate(batch, seq)
    if isinstance(value, tuple):
        return tuple(_evaluate(item, batch, seq) for item in value)
    return value


@dataclass
class ShapeTemplate:
    """The ops of one (model, phase, attention, dtype) as expressions in batch and seq.

    `specs` lists the distinct launches and `sequence` the launch order as indices into
    it. Both are None when the probes could not be fitted, and `reason` gives the cause.
    """

    key: str
    model: dict[str, Any]
    probes: list[tuple[int, int]]
    specs: list[OpSpec] | None
    sequence: list[int] | None
    unmapped: dict[str, int] = field(default_factory=dict)
    assumed_scalar_reads: int = 0
    notes: list[str] = field(default_factory=list)
    reason: str | None = None

    @property
    def fitted(self) -> bool:
        return self.specs is not None and self.sequence is not None

    def instantiate(self, batch: int, seq: int) -> list:
        """Return the ops at (batch, seq), one per launch."""
        concrete = [spec._replace(params=tuple((name, _evaluate(value, batch, seq))
                                               for name, value in spec.params))
                    for spec in self.specs]
        return aten.build_ops(concrete, self.sequence)


def fit_template(key: str, model: dict[str, Any], probes: list[tuple[int, int]],
                 first: _Recorded, second: _Recorded) -> ShapeTemplate:
    """Fit two captures at the probe shapes into a template.

    The template is unfitted when the captures differ in their launches or in their
    unmapped ops, or when some integer has no expression that gives both values.
    """
    template = ShapeTemplate(key, model, probes, None, None, dict(first.unmapped),
                             first.assumed_scalar_reads, first.notes)
    if len(first.specs) != len(second.specs):
        template.reason = (f"the probes launch {len(first.specs)} and {len(second.specs)} "
                           "ops")
        return template
    if first.unmapped != second.unmapped:
        template.reason = "the probes run different unmapped ops"
        return template
    uses = (probes[0][0] != probes[1][0], probes[0][1] != probes[1][1])
    index: dict[tuple[OpSpec, OpSpec], int] = {}
    specs: list[OpSpec] = []
    sequence: list[int] = []
    for position, pair in enumerate(zip(first.specs, second.specs)):
        found = index.get(pair)
        if found is None:
            try:
                specs.append(_fit_spec(pair[0], pair[1], probes, uses))
            except ValueError as error:
                template.reason = f"op {position} ({pair[0].name}) does not fit: {error}"
                return template
            found = index[pair] = len(specs) - 1
        sequence.append(found)
    template.specs, template.sequence = specs, sequence
    return template


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
# Template files


def _encode(value: Any) -> Any:
    if isinstance(value, Expression):
        return {"x": list(value)}
    if isinstance(value, tuple):
        return {"t": [_encode(item) for item in value]}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "x" in value:
            return Expression(*(int(number) for number in value["x"]))
        return tuple(_decode(item) for item in value["t"])
    if isinstance(value, int) and not isinstance(value, bool):
        return Expression(value, 0, 0, 0)
    return value


def _template_path(key: str) -> Path:
    return cache_dir() / f"{key}.json"


def _read_template(key: str) -> ShapeTemplate | None:
    """Return the cached template for `key`, or None when absent, unreadable or stale."""
    path = _template_path(key)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        logger.warning("Ignoring unreadable workload template %s: %s", path, error)
        return None
    try:
        if data["format"] != TEMPLATE_FORMAT or data["key"] != key:
            return None
        specs = None
        if data["specs"] is not None:
            specs = [OpSpec(kind, name, phase, dtype,
                            tuple((param, _decode(value)) for param, value in params))
                     for kind, name, phase, dtype, params in data["specs"]]
        sequence = data["sequence"]
        if specs is not None and not all(0 <= index < len(specs) for index in sequence):
            raise ValueError("launch index out of range")
        return ShapeTemplate(key, data["model"], [tuple(point) for point in data["probes"]],
                             specs, sequence, data["unmapped"], data["assumed_scalar_reads"],
                             data["notes"], data["reason"])
    except (KeyError, TypeError, ValueError) as error:
        logger.warning("Ignoring corrupt workload template %s: %s", path, error)
        return None


def _write_template(template: ShapeTemplate) -> None:
    """Write a template atomically; a cache that cannot be written is logged and skipped."""
    specs = None
    if template.specs is not None:
        specs = [[spec.kind, spec.name, spec.phase, spec.dtype,
                  [[name, _encode(value)] for name, value in spec.params]]
                 for spec in template.specs]
    data = {
        "format": TEMPLATE_FORMAT, "key": template.key, "model": template.model,
        "probes": template.probes, "specs": specs, "sequence": template.sequence,
        "unmapped": template.unmapped, "assumed_scalar_reads": template.assumed_scalar_reads,
        "notes": template.notes, "reason": template.reason,
    }
    path = _template_path(template.key)
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent,
                                         prefix=f".{template.key}.", suffix=".tmp",
                                         delete=False) as file:
            temporary = file.name
            json.dump(data, file, separators=(",", ":"))
        os.replace(temporary, path)
    except OSError as error:
        logger.warning("Could not write workload template %s: %s", path, error)
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------
# Building the model and running one pass


class _Recorded(NamedTuple):
    """The specs, unmapped op counts and notes of one capture."""

    specs: list[OpSpec]
    unmapped: Counter
    assumed_scalar_reads: int
    notes: list[str]


_RUNNERS: dict[str, _ModelRunner] = {}
_MAX_RUNNERS = 4


def _runner_for(request: _Request) -> _ModelRunner:
    """Return a built model for the request, reusing one built earlier in this process."""
    runner_key = hashlib.sha256(
        f"{request.config_json}|{request.dtype}|{request.attention}".encode()).hexdigest()
    runner = _RUNNERS.get(runner_key)
    if runner is None:
        runner = _ModelRunner(request)
        if len(_RUNNERS) >= _MAX_RUNNERS:
            _RUNNERS.pop(next(iter(_RUNNERS)))
        _RUNNERS[runner_key] = runner
    return runner


@contextlib.contextmanager
def _quiet_transformers(transformers: Any):
    """Show only transformers' errors while a model is built or captured, because its
    warnings (about unset loss types, for instance) concern real inference or training."""
    previous = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(previous)


def _is_normalization_module(module: Any, torch: Any) -> bool:
    if isinstance(module, (torch.nn.LayerNorm, torch.nn.GroupNorm,
                           torch.nn.modules.batchnorm._BatchNorm)):
        return True
    return type(module).__name__.endswith(("RMSNorm", "LayerNorm", "GroupNorm"))


class _ModelRunner:
    """A model built on the meta device, ready to be captured at any shape and phase."""

    def __init__(self, request: _Request) -> None:
        self.torch, self.transformers = _import_backends()
        self.request = request
        self.session: _Session | None = None
        self.model, hf_config = self._build()
        self.info = self._describe(hf_config)
        self.forward_parameters = set(inspect.signature(self.model.forward).parameters)
        self._optimizer = None
        for module in self.model.modules():
            if _is_normalization_module(module, self.torch):
                module.register_forward_pre_hook(self._enter_normalization)
                module.register_forward_hook(self._leave_normalization, always_call=True)

    def _enter_normalization(self, module: Any, inputs: Any) -> None:
        if self.session is not None:
            self.session.normalization_depth += 1

    def _leave_normalization(self, module: Any, inputs: Any, output: Any) -> None:
        if self.session is not None:
            self.session.normalization_depth -= 1

    def _build(self) -> tuple[Any, Any]:
        torch, transformers = self.torch, self.transformers
        request = self.request
        config = request.config
        model_type = config.pop("model_type")
        kwargs: dict[str, Any] = {"dtype": getattr(torch, DTYPES[request.dtype])}
        if request.attention == "eager":
            kwargs["attn_implementation"] = "eager"
        try:
            hf_config = transformers.AutoConfig.for_model(model_type, **config)
            model_class = self._model_class(config)
            with torch.device("meta"), _quiet_transformers(transformers):
                if model_class is None:
                    model = transformers.AutoModel.from_config(hf_config, **kwargs)
                else:
                    model = model_class._from_config(hf_config, **kwargs)
        except (ValueError, KeyError, TypeError, AttributeError, ImportError,
                RuntimeError) as error:
            raise InputError(f"Cannot build {request.display_name} from its config with "
                             f"transformers {request.versions[1]}: {error}") from None
        return model, model.config

    def _model_class(self, config: dict[str, Any]) -> Any:
        """Return the first class in the config's "architectures" that transformers provides."""
        for name in config.get("architectures") or []:
            try:
                found = getattr(self.transformers, name)
            except (AttributeError, ImportError, RuntimeError):
                continue
            if hasattr(found, "_from_config"):
                return found
        return None

    def _describe(self, hf_config: Any) -> dict[str, Any]:
        """Facts about the model that checks and templates use, as plain JSON values."""
        model = self.model
        main_input = getattr(model, "main_input_name", "input_ids")
        if main_input == "pixel_values":
            kind = "image"
        elif main_input == "input_ids":
            kind = "text"
        else:
            raise InputError(f"{self.request.display_name} takes {main_input!r} as input; "
                             "only text (input_ids) and image (pixel_values) models can be "
                             "captured.")
        image_size = getattr(hf_config, "image_size", None) or DEFAULT_IMAGE_SIZE
        if isinstance(image_size, int):
            image_size = [image_size, image_size]
        max_positions = getattr(hf_config, "max_position_embeddings", None)
        window = getattr(hf_config, "sliding_window", None)
        return {
            "name": self.request.display_name,
            "model_class": type(model).__name__,
            "kind": kind,
            "can_generate": bool(kind == "text" and model.can_generate()),
            "causal": bool(kind == "text" and model.can_generate()),
            "max_positions": max_positions if isinstance(max_positions, int) else None,
            "attention_window": window if isinstance(window, int) else None,
            "image_size": [int(size) for size in image_size][:2] if kind == "image" else None,
            "num_channels": int(getattr(hf_config, "num_channels", 3) or 3),
            "attention_implementation": getattr(hf_config, "_attn_implementation", None),
        }

    def check_shape(self, batch: int, seq: int, phase: str) -> None:
        check_shape(self.info, batch, seq, phase)

    # -- one pass -----------------------------------------------------------------------

    def capture(self, batch: int, seq: int, phase: str) -> _Recorded:
        """Run one pass at (batch, seq) and return the specs it launched."""
        check_shape(self.info, batch, seq, phase)
        torch = self.torch
        session = _Session(torch, causal_model=self.info["causal"])
        dispatch_mode, function_mode = _mode_classes()
        self.session = session
        module_hook = torch.nn.modules.module.register_module_forward_pre_hook(
            lambda module, inputs: session.count_module())
        try:
            with (function_mode(session), dispatch_mode(session),
                  _quiet_transformers(self.transformers)):
                if phase == "train":
                    self._train_step(session, batch, seq)
                else:
                    self._inference_pass(session, batch, seq, phase)
        except (RuntimeError, NotImplementedError, ValueError, TypeError, IndexError,
                AttributeError) as error:
            raise InputError(
                f"Capturing {self.request.display_name} {phase} on the meta device failed: "
                f"{type(error).__name__}: {error}. The model may read tensor values or "
                "need inputs this capture does not provide."
            ) from error
        finally:
            module_hook.remove()
            self.session = None
            session.normalization_depth = 0
        return _Recorded(session.specs, session.unmapped, session.assumed_scalar_reads,
                         sorted(session.notes))

    def _text_inputs(self, batch: int, length: int, start: int) -> dict[str, Any]:
        torch = self.torch
        inputs = {"input_ids": torch.zeros((batch, length), dtype=torch.long, device="meta")}
        if "position_ids" in self.forward_parameters:
            positions = torch.arange(start, start + length, device="meta")
            inputs["position_ids"] = positions.unsqueeze(0).expand(batch, length)
        return inputs

    def _image_inputs(self, batch: int) -> dict[str, Any]:
        torch = self.torch
        height, width = self.info["image_size"]
        shape = (batch, self.info["num_channels"], height, width)
        dtype = getattr(torch, DTYPES[self.request.dtype])
        return {"pixel_values": torch.zeros(shape, dtype=dtype, device="meta")}

    def _inputs(self, batch: int, seq: int) -> dict[str, Any]:
        if self.info["kind"] == "image":
            return self._image_inputs(batch)
        return self._text_inputs(batch, seq, 0)

    def _cache_argument(self) -> str:
        return "cache" if "cache" in self.forward_parameters else "past_key_values"

    def _inference_pass(self, session: _Session, batch: int, seq: int, phase: str) -> None:
        torch = self.torch
        self.model.eval()
        with torch.no_grad():
            if phase == "decode":
                inputs = self._text_inputs(batch, 1, seq)
                inputs[self._cache_argument()] = self._prefilled_cache(batch, seq)
                inputs["use_cache"] = True
            else:
                inputs = self._inputs(batch, seq)
                if self.info["can_generate"] and "use_cache" in self.forward_parameters:
                    inputs["use_cache"] = phase == "prefill"
                if phase == "prefill" and "logits_to_keep" in self.forward_parameters:
                    inputs["logits_to_keep"] = 1
            session.start(phase)
            self.model(**inputs)
            session.stop()

    def _prefilled_cache(self, batch: int, seq: int) -> Any:
        """Run an unrecorded prefill of `seq` tokens and return its KV cache."""
        inputs = self._text_inputs(batch, seq, 0)
        inputs["use_cache"] = True
        if "logits_to_keep" in self.forward_parameters:
            inputs["logits_to_keep"] = 1
        output = self.model(**inputs)
        cache = getattr(output, "cache", None)
        if cache is None:
            cache = getattr(output, "past_key_values", None)
        if cache is None:
            raise InputError(f"{self.request.display_name} returned no KV cache from a "
                             "prefill, so its decode step cannot be captured.")
        return cache

    def _optimizer_for(self) -> Any:
        """AdamW over the trainable parameters, with its state created by one warm-up step."""
        if self._optimizer is None:
            torch = self.torch
            parameters = [p for p in self.model.parameters() if p.requires_grad]
            optimizer = torch.optim.AdamW(parameters, lr=1e-4, weight_decay=0.01, foreach=True)
            for parameter in parameters:
                parameter.grad = torch.empty_like(parameter)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            self._optimizer = optimizer
        return self._optimizer

    def _train_step(self, session: _Session, batch: int, seq: int) -> None:
        torch = self.torch
        model = self.model
        model.train()
        optimizer = self._optimizer_for()
        inputs = self._inputs(batch, seq)
        if "labels" in self.forward_parameters:
            if self.info["kind"] == "image":
                inputs["labels"] = torch.zeros((batch,), dtype=torch.long, device="meta")
            else:
                inputs["labels"] = inputs["input_ids"]
        if "use_cache" in self.forward_parameters:
            inputs["use_cache"] = False
        with torch.enable_grad():
            session.start("forward")
            output = model(**inputs)
            loss = getattr(output, "loss", None)
            if loss is None:
                # A model without a loss head trains on the sum of its first output.
                session.notes.add("the model has no loss, so the sum of its output is used")
                loss = output[0].sum()
            session.start("backward")
            loss.backward()
            session.start("optimizer")
            optimizer.step()
            session.stop()
            optimizer.zero_grad(set_to_none=True)


# ---------------------------------------------------------------------------------------
# Recording


class _Session:
    """The state of one capture: the current phase and what has been recorded so far."""

    def __init__(self, torch: Any, *, causal_model: bool) -> None:
        self.torch = torch
        self.causal_model = causal_model
        self.phase = ""
        self.recording = False
        self.specs: list[OpSpec] = []
        self.unmapped: Counter = Counter()
        self.assumed_scalar_reads = 0
        self.normalization_depth = 0
        self.notes: set[str] = set()
        # Torch API calls and nn.Module calls since the last launch: the CPU work eager
        # execution does between launches.
        self.calls_since_launch = 0
        self.modules_since_launch = 0
        # Results of aten.all, by id, so that reading one as a bool returns True.
        self._all_results: dict[int, weakref.ref] = {}

    def start(self, phase: str) -> None:
        self.phase = phase
        self.recording = True

    def stop(self) -> None:
        self.recording = False

    def scalar_value(self, tensor: Any) -> Any:
        """Return the value that `.item()` reports for a meta tensor, or None for a real
        tensor, whose value PyTorch reads itself."""
        if tensor.device.type != "meta":
            return None
        self.assumed_scalar_reads += 1
        if tensor.dtype == self.torch.bool:
            reference = self._all_results.get(id(tensor))
            return reference is not None and reference() is tensor
        if tensor.dtype.is_floating_point:
            return 1.0
        return 1

    def record(self, func: Any, args: tuple, kwargs: dict, result: Any) -> None:
        """Record one aten call."""
        namespace, _, name = func._schema.name.partition("::")
        if namespace != "aten" or name in aten.METADATA_OPS:
            return
        if name == "all" and isinstance(result, self.torch.Tensor):
            self._all_results[id(result)] = weakref.ref(result)
        if not self.recording:
            return
        arguments, inputs = _bind_arguments(func, args, kwargs, self.torch)
        outputs = [_tensor_info(tensor) for tensor in _tensors_in(result, self.torch)]
        call = aten.Call(name, arguments, inputs, outputs, name.endswith("_"))
        mapped = aten.map_call(call, self.phase,
                               in_normalization=self.normalization_depth > 0)
        self._launch(mapped.specs)
        if mapped.unmapped:
            self.unmapped[f"aten::{name}"] += 1

    def fused_attention(self, args: tuple, kwargs: dict) -> Any:
        """Record scaled_dot_product_attention as one fused launch and return an empty
        output of its shape, or None to let PyTorch run it when the shapes are unusual."""
        torch = self.torch
        bound = _SDPA_SIGNATURE.bind(*args, **kwargs).arguments
        query, key, value = bound["query"], bound["key"], bound["value"]
        if query.dim() != 4 or key.dim() != 4 or value.dim() != 4:
            return None
        query_len = query.shape[-2]
        # NOTE: an explicit mask counts as causal in a causal model. A sliding-window
        # mask is priced as full causal attention, which overstates FLOPs once the
        # sequence is longer than the window.
        causal = bool(bound.get("is_causal", False)) or (
            bound.get("attn_mask") is not None and self.causal_model and query_len > 1)
        spec = aten.attention_spec(tuple(query.shape), tuple(key.shape),
                                   _tensor_info(query).dtype, self.phase, causal=causal,
                                   name="aten::scaled_dot_product_attention")
        if self.recording:
            self._launch([spec])
        output_shape = (*query.shape[:-1], value.shape[-1])
        if torch.is_grad_enabled() and any(t.requires_grad for t in (query, key, value)):
            return _attention_function().apply(query, key, value, self, causal, output_shape)
        return _empty_attention_output(query, output_shape)

    def count_call(self) -> None:
        """Count one torch API call made from Python while recording."""
        if self.recording:
            self.calls_since_launch += 1

    def count_module(self) -> None:
        """Count one nn.Module call made while recording."""
        if self.recording:
            self.modules_since_launch += 1

    def _launch(self, specs: list[OpSpec]) -> None:
        """Record launches; the first carries the calls made since the previous launch."""
        if specs and self.specs:
            folded = aten.fold_upcast_softmax(self.specs[-1], specs[0])
            if folded is not None:
                previous = dict(self.specs.pop().params)
                self.calls_since_launch += previous.get(aten.CPU_CALLS, 0)
                self.modules_since_launch += previous.get(aten.MODULE_CALLS, 0)
                specs = [folded, *specs[1:]]
        for position, spec in enumerate(specs):
            calls = max(self.calls_since_launch, 1) if position == 0 else 0
            modules = self.modules_since_launch if position == 0 else 0
            self.specs.append(aten.with_cpu_calls(spec, calls, modules))
        if specs:
            self.calls_since_launch = 0
            self.modules_since_launch = 0

    def fused_attention_backward(self, query_shape: tuple, key_shape: tuple, dtype: str,
                                 causal: bool) -> None:
        if self.recording:
            self._launch([aten.attention_spec(
                query_shape, key_shape, dtype, self.phase, causal=causal,
                name="aten::scaled_dot_product_attention_backward", backward=True)])


def _sdpa_signature(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                    scale=None, enable_gqa=False):
    """Mirror the signature of torch.nn.functional.scaled_dot_product_attention, so that
    its arguments can be bound by name."""


_SDPA_SIGNATURE = inspect.signature(_sdpa_signature)


def _empty_attention_output(query: Any, shape: tuple) -> Any:
    """Return an empty attention output laid out as FlashAttention returns it: a [batch, heads,
    length, dim] view of a contiguous [batch, length, heads, dim] tensor, so the model's
    transpose back to [batch, length, heads, dim] needs no copy."""
    batch, heads, length, dim = shape
    return query.new_empty((batch, length, heads, dim)).transpose(1, 2)


@functools.cache
def _attention_function() -> Any:
    """Return an autograd Function that records the fused attention backward launch."""
    import torch

    class FusedAttention(torch.autograd.Function):
        @staticmethod
        def forward(ctx, query, key, value, session, causal, output_shape):
            ctx.session = session
            ctx.causal = causal
            ctx.shapes = (tuple(query.shape), tuple(key.shape), tuple(value.shape))
            ctx.dtype = _tensor_info(query).dtype
            return _empty_attention_output(query, output_shape)

        @staticmethod
        def backward(ctx, gradient):
            query_shape, key_shape, value_shape = ctx.shapes
            ctx.session.fused_attention_backward(query_shape, key_shape, ctx.dtype,
                                                 ctx.causal)
            return (gradient.new_empty(query_shape), gradient.new_empty(key_shape),
                    gradient.new_empty(value_shape), None, None, None)

    return FusedAttention


@functools.cache
def _mode_classes() -> tuple[type, type]:
    """Return the dispatch mode that records aten calls and the function mode that fuses
    attention. They are built on first use because torch is imported lazily."""
    import torch
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    local_scalar_dense = torch.ops.aten._local_scalar_dense.default
    sdpa = torch.nn.functional.scaled_dot_product_attention

    class RecordingMode(TorchDispatchMode):
        def __init__(self, session: _Session) -> None:
            super().__init__()
            self.session = session

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is local_scalar_dense:
                answer = self.session.scalar_value(args[0])
                if answer is not None:
                    return answer
            result = func(*args, **kwargs)
            self.session.record(func, args, kwargs, result)
            return result

    class AttentionMode(TorchFunctionMode):
        def __init__(self, session: _Session) -> None:
            super().__init__()
            self.session = session

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            self.session.count_call()
            if func is sdpa:
                result = self.session.fused_attention(args, kwargs)
                if result is not None:
                    return result
            return func(*args, **kwargs)

    return RecordingMode, AttentionMode


@functools.cache
def _schema_arguments(func: Any) -> tuple[tuple[str, bool, Any], ...]:
    """Return (name, keyword-only, default) of each schema argument of an aten overload."""
    found = []
    for argument in func._schema.arguments:
        default = argument.default_value if argument.has_default_value() else None
        found.append((argument.name, argument.kwarg_only, default))
    return tuple(found)


def _bind_arguments(func: Any, args: tuple, kwargs: dict,
                    torch: Any) -> tuple[dict[str, Any], list[aten.TensorInfo]]:
    """Name each argument after the schema and describe its tensors.

    Returns the arguments with tensors replaced by TensorInfo, and every tensor
    argument in order.
    """
    arguments: dict[str, Any] = {}
    tensors: list[aten.TensorInfo] = []
    for position, (name, keyword_only, default) in enumerate(_schema_arguments(func)):
        if not keyword_only and position < len(args):
            value = args[position]
        else:
            value = kwargs.get(name, default)
        if isinstance(value, torch.Tensor):
            value = _tensor_info(value)
            tensors.append(value)
        elif isinstance(value, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in value):
            value = [_tensor_info(v) if isinstance(v, torch.Tensor) else None for v in value]
            tensors.extend(v for v in value if v is not None)
        arguments[name] = value
    return arguments, tensors


def _tensors_in(result: Any, torch: Any) -> list[Any]:
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, (list, tuple)):
        return [item for item in result if isinstance(item, torch.Tensor)]
    return []


def _tensor_info(tensor: Any) -> aten.TensorInfo:
    dtype = str(tensor.dtype).removeprefix("torch.")
    try:
        stride = tuple(tensor.stride())
    except RuntimeError:
        # Sparse and nested tensors have no strides, so they count as contiguous.
        stride = tuple(math.prod(tensor.shape[i + 1:]) for i in range(tensor.dim()))
    return aten.TensorInfo(tuple(tensor.shape), stride, aten.TORCH_DTYPES.get(dtype, dtype),
                           tensor.element_size(), tensor.device.type)


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
