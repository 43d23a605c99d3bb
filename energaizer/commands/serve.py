"""`energaizer serve-estimate`: energy per request and per token of serving an LLM."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from energaizer.cli import Dtype, JsonOption, TimeCorrections, _console, _print_json, reports_errors


def register(app: typer.Typer) -> None:
    app.command("serve-estimate")(serve_estimate)


@reports_errors
def serve_estimate(
    spec: Path | None = typer.Argument(
        None, help="Serving spec YAML; the options below override its values."
    ),
    model: str | None = typer.Option(None, "--model", "-m", help="Model preset or config.json path."),
    gpu: str | None = typer.Option(None, "--gpu", "-g", help="GPU profile id (default h100-sxm5-80gb)."),
    num_gpus: int | None = typer.Option(
        None, "--num-gpus", min=1, help="GPUs the model is split over with tensor parallelism."
    ),
    batch: int | None = typer.Option(
        None, "--batch", "-b", min=1, help="Average requests in flight (sequences per decode step)."
    ),
    prompt_tokens: int | None = typer.Option(
        None, "--prompt-tokens", min=1, help="Prompt length in tokens (fixed)."
    ),
    output_tokens: int | None = typer.Option(
        None, "--output-tokens", min=1, help="Generated tokens per request (fixed)."
    ),
    step_overhead_s: float | None = typer.Option(
        None, "--step-overhead-s", min=0.0,
        help="Engine CPU time per decode step in seconds while the GPU waits (default 0.0012).",
    ),
    time_corrections: TimeCorrections | None = typer.Option(
        None, "--time-corrections",
        help="none: analytical kernel times, as for CUDA-graph decode (default); "
        "calibration: apply the calibration's time corrections, fitted on eager PyTorch runs.",
    ),
    prefix_cache_hit_rate: float | None = typer.Option(
        None, "--prefix-cache-hit-rate",
        help="Share of prompt tokens found in the engine's prefix cache, 0 to below 1 "
        "(default 0).",
    ),
    dtype: Dtype | None = typer.Option(
        None, "--dtype",
        help="Weights dtype (default bf16); fp8 runs weight GEMMs in fp8, the rest in bf16.",
    ),
    clock_mhz: float | None = typer.Option(
        None, "--clock-mhz", help="SM clock in MHz (default: the profile's maximum)."
    ),
    power_limit_w: float | None = typer.Option(
        None, "--power-limit-w",
        help="Power limit in W below the profile's; the clock drops to stay under it.",
    ),
    calibration: Path | None = typer.Option(
        None, "--calibration", help="Calibration profile JSON to use instead of the shipped one."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Estimate energy per request and per output token of an LLM served with vLLM."""
    from energaizer.serving.cli_support import serving_spec_from_options
    from energaizer.serving.estimate import estimate_serving

    serving_spec = serving_spec_from_options(
        spec, model=model, gpu=gpu, num_gpus=num_gpus, batch=batch,
        prompt_tokens=prompt_tokens, output_tokens=output_tokens,
        step_overhead_s=step_overhead_s,
        time_corrections=time_corrections.value if time_corrections else None,
        prefix_cache_hit_rate=prefix_cache_hit_rate, dtype=dtype.value if dtype else None,
        clock_mhz=clock_mhz, power_limit_w=power_limit_w,
        calibration=str(calibration) if calibration else None,
    )
    result = estimate_serving(serving_spec)
    if json_output:
        _print_json(result.to_dict())
        return
    render_serving(result, serving_spec, _console())


def render_serving(result, spec, console) -> None:
    """Print energy per request and per token, latency and decode power."""
    table = Table(title=f"Serving {spec.model} on {spec.num_gpus} x "
                        f"{result.estimate.gpu.name}, batch {spec.batch}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    rows = (
        ("energy per request", f"{result.energy_per_request_j:,.1f} J"),
        ("  prefill", f"{result.prefill_energy_j:,.1f} J"),
        ("  decode", f"{result.decode_energy_j:,.1f} J"),
        ("energy per output token", f"{result.energy_per_output_token_j:.4f} J"),
        ("output tokens per second", f"{result.output_tokens_per_s:,.0f}"),
        ("time to first token", f"{result.time_to_first_token_s * 1e3:.1f} ms"),
        ("time per output token", f"{result.time_per_output_token_s * 1e3:.2f} ms"),
        ("request latency, no queueing", f"{result.request_latency_s:,.2f} s"),
        ("GPU time per request (shared)", f"{result.estimate.duration_s * 1e3:,.1f} ms"),
        ("decode power, all GPUs", f"{result.decode_power_w:,.0f} W"),
    )
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    for warning in result.estimate.warnings:
        console.print(f"note: {warning}", highlight=False)
