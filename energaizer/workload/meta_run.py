"""Build a Hugging Face model on the meta device and record the launches of one pass."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import logging
import math
import weakref
from collections import Counter
from typing import TYPE_CHECKING, Any, NamedTuple

from energaizer.errors import InputError
from energaizer.workload import aten
from energaizer.workload.aten import OpSpec

if TYPE_CHECKING:
    from energaizer.workload.capture import _Request

logger = logging.getLogger(__name__)

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
DEFAULT_IMAGE_SIZE = 224
INSTALL_HINT = (
    'Install torch and transformers with pip install "energaizer[model]" or '
    "pip install torch transformers. CI installs torch with pip install torch==2.13.0."
)

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


