"""Compare serving estimates with the ML.ENERGY v3 H100 LLM serving measurements.

Usage:
    python calibration/validate_serving.py [--csv FILE] [--prompt-tokens N]
        [--time-corrections calibration|none|both] [--json FILE]

FILE defaults to ../shared/data/measurements/mlenergy/mlenergy_v3_h100_llm_serving.csv
next to the repository. Every dense bf16 row whose model has a preset is estimated with
the row's average batch size, average output length and number of GPUs (as tensor
parallelism). The script prints measured and estimated energy per output token,
inter-token latency and power, with the relative error.

The CSV records no prompt lengths, so every row assumes the same mean prompt length
(`--prompt-tokens`, default ASSUMED_PROMPT_TOKENS). Estimates were not fitted to these
rows: the step overhead and the time-correction choice are the library defaults unless
the options change them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from energaizer.errors import ProfileError
from energaizer.serving import ServingModel, ServingSpec, estimate_serving
from energaizer.workload.presets import load_model_config

DEFAULT_CSV = (REPOSITORY.parent / "shared" / "data" / "measurements" / "mlenergy"
               / "mlenergy_v3_h100_llm_serving.csv")
# Estimate: a chat prompt with its conversation history. The CSV records no prompt
# length, so the error columns depend on this guess (prefill energy grows with it).
ASSUMED_PROMPT_TOKENS = 1000
# Assumption: ML.ENERGY ran the "H100" rows on H100 SXM5 80 GB GPUs; the CSV names no variant.
GPU_PROFILE = "h100-sxm5-80gb"
# Models in the CSV whose architecture equals a preset of another name.
SAME_ARCHITECTURE = {"meta-llama/Llama-3.3-70B-Instruct": "llama-3.1-70b"}


def preset_for(model_id: str) -> str | None:
    """Return the preset that describes `model_id`, or None when there is none."""
    if model_id in SAME_ARCHITECTURE:
        return SAME_ARCHITECTURE[model_id]
    for candidate in (model_id, model_id.removesuffix("-Instruct")):
        try:
            return load_model_config(candidate)[1]
        except ProfileError:
            continue
    return None


def serving_rows(csv_path: Path) -> pd.DataFrame:
    """Return the dense bf16 rows of the CSV whose model has a preset, with the preset."""
    frame = pd.read_csv(csv_path)
    frame = frame[(frame["architecture"] == "Dense Transformer")
                  & (frame["precision"] == "bfloat16")].copy()
    frame["preset"] = [preset_for(model_id) for model_id in frame["model_id"]]
    return frame[frame["preset"].notna()].sort_values(["model_id", "max_num_seqs"])


def compare_row(row: pd.Series, prompt_tokens: int, time_corrections: str,
                models: dict[tuple, ServingModel]) -> dict[str, Any]:
    """Estimate one measured row and return measured, estimated and error values."""
    batch = max(round(float(row["avg_batch_size"])), 1)
    spec = ServingSpec(model=row["preset"], gpu=GPU_PROFILE, num_gpus=int(row["num_gpus"]),
                       batch=batch, prompt_tokens=prompt_tokens,
                       output_tokens=float(row["avg_output_len"]),
                       time_corrections=time_corrections)
    key = (spec.model, spec.num_gpus, spec.batch, time_corrections)
    models.setdefault(key, ServingModel(spec))
    result = estimate_serving(spec, models[key])
    measured_token_j = float(row["energy_per_output_token_J"])
    return {
        "model": row["model_id"], "preset": spec.model, "task": row["task"],
        "num_gpus": spec.num_gpus, "max_num_seqs": int(row["max_num_seqs"]), "batch": batch,
        "output_tokens": float(row["avg_output_len"]), "time_corrections": time_corrections,
        "measured_token_j": measured_token_j,
        "estimated_token_j": result.energy_per_output_token_j,
        "token_energy_error": result.energy_per_output_token_j / measured_token_j - 1,
        "measured_itl_ms": float(row["median_itl_ms"]),
        "estimated_itl_ms": result.time_per_output_token_s * 1e3,
        "measured_power_w": float(row["avg_power_W"]),
        "estimated_decode_power_w": result.decode_power_w,
    }


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean absolute percentage error of energy per token, per model and option."""
    frame = pd.DataFrame(results)
    frame["absolute_error"] = frame["token_energy_error"].abs() * 100
    grouped = frame.groupby(["preset", "num_gpus", "time_corrections"])["absolute_error"]
    return {f"{preset} x{gpus} {option}": round(float(value), 1)
            for (preset, gpus, option), value in grouped.mean().items()}


def print_table(results: list[dict[str, Any]]) -> None:
    print("| model | GPUs | batch | corrections | J/token measured | estimated | error "
          "| ITL ms measured | estimated | power W measured | decode estimated |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for item in results:
        print(f"| {item['model']} | {item['num_gpus']} | {item['batch']} | "
              f"{item['time_corrections']} | {item['measured_token_j']:.4f} | "
              f"{item['estimated_token_j']:.4f} | {item['token_energy_error']:+.1%} | "
              f"{item['measured_itl_ms']:.1f} | {item['estimated_itl_ms']:.1f} | "
              f"{item['measured_power_w']:.0f} | {item['estimated_decode_power_w']:.0f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--prompt-tokens", type=int, default=ASSUMED_PROMPT_TOKENS)
    parser.add_argument("--time-corrections", choices=("calibration", "none", "both"),
                        default="both")
    parser.add_argument("--json", type=Path, help="Also write every number to this file.")
    arguments = parser.parse_args(argv)
    if not arguments.csv.is_file():
        print(f"error: measurement file not found: {arguments.csv}", file=sys.stderr)
        return 2
    options = (("calibration", "none") if arguments.time_corrections == "both"
               else (arguments.time_corrections,))
    models: dict[tuple, ServingModel] = {}
    results = [compare_row(row, arguments.prompt_tokens, option, models)
               for option in options for _, row in serving_rows(arguments.csv).iterrows()]
    print(f"Assumed mean prompt length: {arguments.prompt_tokens} tokens; GPU profile "
          f"{GPU_PROFILE}.\n")
    print_table(results)
    summary = summarize(results)
    print("\nMean absolute error of energy per output token (%):")
    for name, value in summary.items():
        print(f"- {name}: {value}")
    if arguments.json:
        arguments.json.write_text(json.dumps({"rows": results, "mape": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
