"""The `energaizer` command line. Each command parses its options and calls one library
function; errors become a message on stderr and the exit code of their class."""

from __future__ import annotations

import functools
import json
import logging
import signal
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.text import Text

from energaizer import __version__
from energaizer.errors import EnergaizerError, InputError
from energaizer.progress import ProgressBar

app = typer.Typer(
    name="energaizer",
    help="Estimate and measure the energy, cost and carbon of GPU AI workloads.",
    no_args_is_help=True,
    add_completion=False,
)
_state = {"quiet": False}

TraceArgument = typer.Argument(
    ..., help="Profiler trace (.json or .json.gz), a folder of per-rank traces, or a tar archive of one."
)
LenientOption = typer.Option(
    False, "--lenient", help="Skip events that do not parse and read truncated traces up to their end."
)
JsonOption = typer.Option(False, "--json", help="Print one JSON object instead of tables.")


def _console() -> Console:
    return Console(quiet=_state["quiet"], soft_wrap=False)


def _stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def progress_enabled() -> bool:
    """Return True when progress bars are drawn: stderr is a terminal, without --quiet."""
    return not _state["quiet"] and _stderr_is_terminal()


def trace_progress(trace: Path) -> ProgressBar:
    """Return a progress bar for reading a trace. It counts the bytes of a file, or the
    traces of a folder or tar archive, and reads "analyzing" once reading is done."""
    from energaizer.trace import is_trace_folder

    if is_trace_folder(trace):
        return ProgressBar(progress_enabled(), description="reading traces", unit="items",
                           finished_description="analyzing")
    size = trace.stat().st_size if trace.is_file() else None
    return ProgressBar(progress_enabled(), total=size, description="reading trace",
                       unit="bytes", finished_description="analyzing")


def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn energaizer errors into a message on stderr and the error's exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except EnergaizerError as error:
            message = Text("error: ", style="red") + Text(str(error))
            Console(stderr=True, soft_wrap=True).print(message, highlight=False)
            raise typer.Exit(code=error.exit_code) from None

    return wrapper


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"energaizer {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only results and errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details to stderr."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Estimate and measure the energy, cost and carbon of GPU AI workloads."""
    _state["quiet"] = quiet
    level = logging.DEBUG if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@app.command()
@reports_errors
def analyze(
    trace: Path = TraceArgument,
    json_output: bool = JsonOption,
    lenient: bool = LenientOption,
) -> None:
    """Break a trace down by op class, step and kernel signature."""
    from energaizer.analyze.analysis import analyze_trace
    from energaizer.analyze.summary import summarize_analysis
    from energaizer.report.terminal import render_analysis
    from energaizer.trace import is_trace_folder, read_trace, read_trace_folder

    with trace_progress(trace) as progress:
        if is_trace_folder(trace):
            ranks = read_trace_folder(trace, lenient=lenient, progress=progress)
            traces = [item.trace for item in ranks]
        else:
            traces = [read_trace(trace, lenient=lenient, progress=progress)]
        summaries = [summarize_analysis(analyze_trace(item)) for item in traces]
    if json_output:
        _print_json(summaries[0] if len(summaries) == 1 else {"ranks": summaries})
        return
    console = _console()
    for summary in summaries:
        render_analysis(summary, console)


class Dtype(str, Enum):
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"
    fp8 = "fp8"  # fp8 weight GEMMs, serving estimates only


class Phase(str, Enum):
    prefill = "prefill"
    decode = "decode"
    train = "train"
    forward = "forward"


class Attention(str, Enum):
    default = "default"
    eager = "eager"


class TimeCorrections(str, Enum):
    none = "none"
    calibration = "calibration"


@app.command()
@reports_errors
def estimate(
    spec: Optional[Path] = typer.Argument(
        None, help="With --serving: a serving spec YAML; the options override its values."
    ),
    serving: bool = typer.Option(
        False, "--serving",
        help="Estimate LLM serving (prefill and decode per request) from SPEC and/or options.",
    ),
    num_gpus: Optional[int] = typer.Option(
        None, "--num-gpus", min=1, help="With --serving: GPUs the model is split over (tensor parallel)."
    ),
    prompt_tokens: Optional[int] = typer.Option(
        None, "--prompt-tokens", min=1, help="With --serving: prompt length in tokens."
    ),
    output_tokens: Optional[int] = typer.Option(
        None, "--output-tokens", min=1, help="With --serving: generated tokens per request."
    ),
    prefix_cache_hit_rate: Optional[float] = typer.Option(
        None, "--prefix-cache-hit-rate",
        help="With --serving: share of prompt tokens found in the prefix cache, from 0 up to "
        "but not including 1 (default 0).",
    ),
    time_corrections: Optional[TimeCorrections] = typer.Option(
        None, "--time-corrections",
        help="With --serving: none uses analytical kernel times, as for CUDA-graph decode "
        "(default); calibration applies the corrections fitted on eager PyTorch runs.",
    ),
    trace: Optional[Path] = typer.Option(
        None, "--trace", "-t", help="Profiler trace file, folder of per-rank traces, or tar archive."
    ),
    model: Optional[str] = typer.Option(
        None, "--model", "-m", help="Model preset name or path to a Hugging Face config.json."
    ),
    workload: Optional[Path] = typer.Option(
        None, "--workload", "-w", help="Op-list JSON file (schema energaizer.workload/1)."
    ),
    batch: Optional[int] = typer.Option(None, "--batch", "-b", min=1, help="Batch size (default 1)."),
    seq: Optional[int] = typer.Option(
        None, "--seq", "-s", min=1,
        help="Sequence length in tokens; for decode, the KV cache length (default 1024).",
    ),
    dtype: Optional[Dtype] = typer.Option(
        None, "--dtype",
        help="Data type of weights and activations (default bf16); fp8 only with --serving.",
    ),
    phase: Optional[Phase] = typer.Option(
        None, "--phase",
        help="prefill/forward: one forward pass; decode: one token per sequence against the "
        "KV cache; train: forward, backward and optimizer step (default prefill).",
    ),
    attention: Optional[Attention] = typer.Option(
        None, "--attention",
        help="default: fused scaled-dot-product attention; eager: matmul and softmax.",
    ),
    gpu: Optional[str] = typer.Option(
        None, "--gpu", "-g",
        help="GPU profile id, name or YAML file. For a trace, estimates it on this GPU instead.",
    ),
    clock_mhz: Optional[float] = typer.Option(
        None, "--clock-mhz", min=1.0, help="SM clock in MHz (default: the profile's maximum)."
    ),
    power_limit_w: Optional[float] = typer.Option(
        None, "--power-limit-w", min=1.0,
        help="Power limit in W below the profile's; the clock drops to stay under it.",
    ),
    calibration: Optional[Path] = typer.Option(
        None, "--calibration", help="Calibration profile JSON to use instead of the shipped one."
    ),
    json_output: bool = JsonOption,
    lenient: bool = LenientOption,
) -> None:
    """Estimate energy (J, Wh), duration, power and their breakdown.

    With no source, the embedded default runs (a model preset on a GPU profile).
    """
    from energaizer.estimate import estimate as run_estimate
    from energaizer.report.terminal import render_estimate

    serving_only = {"--num-gpus": num_gpus, "--prompt-tokens": prompt_tokens,
                    "--output-tokens": output_tokens,
                    "--prefix-cache-hit-rate": prefix_cache_hit_rate,
                    "--time-corrections": time_corrections}
    if serving or spec is not None:
        not_serving = {"--trace": trace, "--workload": workload, "--seq": seq,
                       "--phase": phase, "--attention": attention, "--lenient": lenient or None}
        _reject_options(not_serving, "to trace, model and workload estimates, not to "
                        "--serving; a serving estimate covers prefill and decode itself")
        options = {
            "model": model, "gpu": gpu, "num_gpus": num_gpus, "batch": batch,
            "prompt_tokens": prompt_tokens, "output_tokens": output_tokens,
            "dtype": dtype.value if dtype else None, "clock_mhz": clock_mhz,
            "power_limit_w": power_limit_w,
            "calibration": str(calibration) if calibration else None,
            "prefix_cache_hit_rate": prefix_cache_hit_rate,
            "time_corrections": time_corrections.value if time_corrections else None,
        }
        _estimate_serving(spec, serving, options, json_output)
        return
    _reject_options(serving_only, "only with --serving")

    if trace is not None:
        bar = trace_progress(trace)
    else:
        # The first estimate of a model captures it, which can take several seconds.
        bar = ProgressBar(progress_enabled(), description="estimating", unit=None)
    with bar as progress:
        result = run_estimate(
            trace=trace, model=model, workload=workload, batch=batch, seq=seq,
            dtype=(dtype or Dtype.bf16).value, phase=(phase or Phase.prefill).value,
            attention=(attention or Attention.default).value, gpu=gpu, clock_mhz=clock_mhz,
            power_limit_w=power_limit_w, calibration=calibration, lenient=lenient,
            progress=progress,
        )
    if json_output:
        _print_json(result.to_dict())
        return
    render_estimate(result, _console())


def _reject_options(options: dict[str, Any], reason: str) -> None:
    """Raise InputError naming every option of `options` that was set; `reason` completes the
    sentence after "apply" or "applies"."""
    used = [name for name, value in options.items() if value is not None]
    if used:
        verb = "apply" if len(used) > 1 else "applies"
        raise InputError(f"{', '.join(used)} {verb} {reason}.")


def _estimate_serving(spec, serving, options: dict[str, Any], json_output) -> None:
    from energaizer.commands.serve import render_serving
    from energaizer.serving.cli_support import serving_spec_from_options
    from energaizer.serving.estimate import estimate_serving

    if not serving:
        raise InputError(f"A positional SPEC ({spec}) is read only with --serving.")
    serving_spec = serving_spec_from_options(spec, **options)
    result = estimate_serving(serving_spec)
    if json_output:
        _print_json(result.to_dict())
        return
    render_serving(result, serving_spec, _console())


@app.command()
@reports_errors
def validate(
    measurements: Path = typer.Argument(..., help="Measurement-set CSV to predict and compare."),
    calibration: Optional[Path] = typer.Option(
        None, "--calibration", help="Calibration profile JSON to use for every row."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Predict every measured run and report time, power and energy errors (MAPE)."""
    from energaizer.calibrate.validate import validate_file
    from energaizer.report.terminal import render_validation

    summary = validate_file(measurements, calibration)
    if json_output:
        _print_json(summary)
        return
    render_validation(summary, _console())


@app.command()
@reports_errors
def profiles(json_output: bool = JsonOption) -> None:
    """List the GPU profiles that --gpu accepts."""
    from rich.table import Table

    from energaizer.hardware.profiles import list_profiles

    items = list_profiles()
    if json_output:
        _print_json([profile.to_dict() for profile in items])
        return
    table = Table(title="GPU profiles")
    for column in ("id", "name", "SMs", "boost MHz", "memory GB", "GB/s", "limit W", "idle W"):
        table.add_column(column, justify="left" if column in ("id", "name") else "right")
    for profile in items:
        table.add_row(profile.id, profile.name, str(profile.sms), f"{profile.boost_clock_mhz:.0f}",
                      f"{profile.memory_gb:g}", f"{profile.memory_bandwidth_gb_s:,.0f}",
                      f"{profile.power_limit_w:.0f}", f"{profile.idle_power_w:.0f}")
    _console().print(table)


def _register_commands() -> None:
    """Add the commands defined in `energaizer.commands` modules."""
    import importlib
    import pkgutil

    import energaizer.commands as commands

    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"energaizer.commands.{module_info.name}")
        module.register(app)


_register_commands()


def main() -> None:
    """Entry point of the `energaizer` console script."""
    if hasattr(signal, "SIGPIPE"):
        # When a reader such as `head` closes the output early, end quietly as other
        # command-line tools do (status 141 in the shell), not with exit code 1, which
        # means a failed check.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    app()
