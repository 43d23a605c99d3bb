"""Fit the H100 serving calibration on ML.ENERGY v3 measurements and validate it.

Usage:
    python calibration/validate_serving.py [--csv FILE] [--fit] [--json FILE]

FILE defaults to ../shared/data/measurements/mlenergy/mlenergy_v3_h100_llm_serving.csv
next to the repository. It contains vLLM serving runs on H100 GPUs: per model, GPU count
and maximum batch, the average batch and output length, energy per output token,
average power, output throughput and inter-token latency. Every dense bf16 or fp8 row
of a text task whose model has a preset or a recalled config is used. The rows of
FIT_PRESETS (Llama-3.1-70B and Llama-3.3-70B on four GPUs) form the fit set. The rest
(Llama-3.1-8B, Gemma 3 and Llama-3.1-405B FP8) are held out and only predicted.

With --fit the script
1. picks the task's mean prompt length and prefix-cache hit rate, which the file does
   not record, from PROMPT_TOKENS_GRID x HIT_RATE_GRID: the pair whose estimates come
   closest to the fit rows' measured output throughput (time only, no energy);
2. fits two non-negative scales of the A100-PCIe fit's power coefficients carried to
   the H100 by module capacity: one for the DRAM term and one for the SM terms,
   to the fit rows' measured average power;
3. writes calibration/h100-sxm5-80gb.json with the scaled coefficients, the chosen
   prompt mix and the errors on the held-out rows.
Without --fit it reads that file and the prompt mix recorded in it. Either way it prints
measured and estimated energy per output token, throughput and power for every row, and
the mean absolute errors of each set.
"""

from __future__ import annotations

import argparse
import atexit
import itertools
import json
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import nnls

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from energaizer.calibrate.profile import (
    REFERENCE_GPU,
    Calibration,
    carried_calibration,
    load_calibration,
    save_calibration,
)
from energaizer.errors import ProfileError
from energaizer.hardware.profiles import load_profile
from energaizer.power.coefficients import CORE_MODULES, PowerCoefficients
from energaizer.serving import ServingModel, ServingSpec, estimate_serving
from energaizer.workload.presets import load_model_config

DEFAULT_CSV = (REPOSITORY.parent / "shared" / "data" / "measurements" / "mlenergy"
               / "mlenergy_v3_h100_llm_serving.csv")
# Assumption: ML.ENERGY ran the "H100" rows on H100 SXM5 80 GB GPUs; the CSV names no variant.
GPU_PROFILE = "h100-sxm5-80gb"
CALIBRATION_PATH = REPOSITORY / "calibration" / f"{GPU_PROFILE}.json"
# Models in the CSV whose architecture equals a preset of another name.
SAME_ARCHITECTURE = {"meta-llama/Llama-3.3-70B-Instruct": "llama-3.1-70b"}
FIT_PRESETS = ("llama-3.1-70b",)
# The file's precision names, as serving dtypes.
PRECISIONS = {"bfloat16": "bf16", "fp8": "fp8"}
# Tasks whose requests are text only, as the serving model assumes.
TEXT_TASKS = frozenset({"lm-arena-chat", "gpqa", "sourcegraph-fim"})
# Text-model sizes of dense models in the file that have no preset. NOTE: written from
# memory of the published Hugging Face configs and not checked against them here, so
# their rows are indicative. The serving model also ignores Gemma 3's sliding-window
# layers, which read at most 1,024 cached tokens, so it overstates their KV reads.
RECALLED_CONFIGS = {
    "google/gemma-3-12b-it": {
        "model_type": "gemma3_text", "hidden_size": 3840, "intermediate_size": 15360,
        "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 256,
        "num_hidden_layers": 48, "vocab_size": 262208, "max_position_embeddings": 131072,
    },
    "meta-llama/Llama-3.1-405B-Instruct-FP8": {
        "model_type": "llama", "hidden_size": 16384, "intermediate_size": 53248,
        "num_attention_heads": 128, "num_key_value_heads": 8, "head_dim": 128,
        "num_hidden_layers": 126, "vocab_size": 128256, "max_position_embeddings": 131072,
    },
    "google/gemma-3-27b-it": {
        "model_type": "gemma3_text", "hidden_size": 5376, "intermediate_size": 21504,
        "num_attention_heads": 32, "num_key_value_heads": 16, "head_dim": 128,
        "num_hidden_layers": 62, "vocab_size": 262208, "max_position_embeddings": 131072,
    },
}
_CONFIG_FOLDER = Path(tempfile.mkdtemp(prefix="energaizer-serving-configs-"))
atexit.register(shutil.rmtree, _CONFIG_FOLDER, ignore_errors=True)
# Candidate mean prompt lengths (tokens) and prefix-cache hit rates of the chat task.
PROMPT_TOKENS_GRID = (500, 750, 1000, 1250, 1500, 2000)
HIT_RATE_GRID = (0.0, 0.5, 0.7, 0.8, 0.9)


def preset_for(model_id: str) -> str | None:
    """Return the preset that describes `model_id`, or None when there is none."""
    if model_id in SAME_ARCHITECTURE:
        return SAME_ARCHITECTURE[model_id]
    if model_id in RECALLED_CONFIGS:
        path = _CONFIG_FOLDER / f"{model_id.split('/')[-1]}.json"
        path.write_text(json.dumps(RECALLED_CONFIGS[model_id]))
        return str(path)
    for candidate in (model_id, model_id.removesuffix("-Instruct")):
        try:
            return load_model_config(candidate)[1]
        except ProfileError:
            continue
    return None


def preset_label(preset: str) -> str:
    """Return a preset's name, or a recalled config file's model name."""
    return Path(preset).stem if preset.endswith(".json") else preset


def serving_rows(csv_path: Path) -> pd.DataFrame:
    """Return the dense bf16 text-task rows of the CSV whose model has a preset or a
    recalled config, with it and whether the row belongs to the fit set."""
    frame = pd.read_csv(csv_path)
    frame = frame[(frame["architecture"] == "Dense Transformer")
                  & frame["precision"].isin(PRECISIONS)
                  & frame["task"].isin(TEXT_TASKS)].copy()
    frame["preset"] = [preset_for(model_id) for model_id in frame["model_id"]]
    frame = frame[frame["preset"].notna()].copy()
    frame["fit_set"] = frame["preset"].isin(FIT_PRESETS)
    return frame.sort_values(["model_id", "max_num_seqs"])


def skipped_dense_models(csv_path: Path) -> dict[str, str]:
    """Return the dense models of the file with runs that are not estimated, and why."""
    frame = pd.read_csv(csv_path)
    frame = frame[frame["architecture"] == "Dense Transformer"]
    skipped = {}
    for (model_id, precision), group in frame.groupby(["model_id", "precision"]):
        tasks = ", ".join(sorted(set(group["task"])))
        if precision not in PRECISIONS:
            skipped[model_id] = f"{precision} weights, which the serving model does not cover"
        elif not set(group["task"]) & TEXT_TASKS:
            skipped[model_id] = (f"only {tasks} runs, whose image and video inputs the "
                                 "serving model does not cover")
        elif preset_for(model_id) is None:
            skipped[model_id] = f"no preset describes its architecture ({tasks} runs)"
        elif set(group["task"]) - TEXT_TASKS:
            other = ", ".join(sorted(set(group["task"]) - TEXT_TASKS))
            skipped[model_id] = f"its {other} runs only, whose image inputs are not covered"
    return skipped


def row_spec(row: pd.Series, prompt_tokens: float, hit_rate: float) -> ServingSpec:
    """Build the serving spec of one measured row under an assumed prompt mix."""
    return ServingSpec(model=row["preset"], gpu=GPU_PROFILE, num_gpus=int(row["num_gpus"]),
                       batch=max(round(float(row["avg_batch_size"])), 1),
                       prompt_tokens=prompt_tokens, output_tokens=float(row["avg_output_len"]),
                       dtype=PRECISIONS[row["precision"]], prefix_cache_hit_rate=hit_rate)


def fit_prompt_mix(fit_rows: pd.DataFrame, calibration: Calibration) -> tuple[float, float]:
    """Return the (mean prompt tokens, prefix-cache hit rate) of the grid whose estimated
    output throughput is closest to the measured one, as mean absolute relative error."""
    best: tuple[float, float, float] | None = None
    for prompt_tokens, hit_rate in itertools.product(PROMPT_TOKENS_GRID, HIT_RATE_GRID):
        errors = []
        for _, row in fit_rows.iterrows():
            spec = row_spec(row, prompt_tokens, hit_rate)
            result = estimate_serving(spec, ServingModel(spec, calibration))
            errors.append(abs(result.output_tokens_per_s / row["output_tok_per_s"] - 1))
        score = float(np.mean(errors))
        if best is None or score < best[0]:
            best = (score, prompt_tokens, hit_rate)
    assert best is not None
    return best[1], best[2]


def _split_coefficients(power: PowerCoefficients) -> tuple[PowerCoefficients, PowerCoefficients]:
    """Split coefficients into the DRAM term alone and the SM terms alone."""
    watts = power.to_dict()
    return (PowerCoefficients({"dram": watts["dram"]}),
            PowerCoefficients({module: watts[module] for module in CORE_MODULES}))


def fit_power_scales(fit_rows: pd.DataFrame, base: Calibration, prompt_tokens: float,
                     hit_rate: float) -> tuple[float, float]:
    """Fit non-negative scales of `base`'s DRAM and SM coefficients to measured power.

    Energy per token is linear in the coefficients at a fixed clock, so each row gives
    one linear equation. Its left side is the idle energy plus each group's energy at
    scale 1 times the group's scale. Its right side is the measured average power times
    the estimated time per token. Dividing each equation by that energy makes the fit
    minimize relative errors.
    """
    dram, core = _split_coefficients(base.power)
    columns, targets = [], []
    for _, row in fit_rows.iterrows():
        spec = row_spec(row, prompt_tokens, hit_rate)
        energies = []
        for power in (PowerCoefficients({}), dram, core):
            result = estimate_serving(spec, ServingModel(spec, replace(base, power=power)))
            energies.append(result.energy_per_output_token_j)
        measured_j = float(row["avg_power_W"]) / result.output_tokens_per_s
        columns.append([(energies[1] - energies[0]) / measured_j,
                        (energies[2] - energies[0]) / measured_j])
        targets.append((measured_j - energies[0]) / measured_j)
    scales, _ = nnls(np.array(columns), np.array(targets))
    return float(scales[0]), float(scales[1])


def scaled_calibration(base: Calibration, dram_scale: float, core_scale: float) -> Calibration:
    """Return `base` with its DRAM coefficient times `dram_scale` and its SM coefficients
    times `core_scale`."""
    watts = base.power.to_dict()
    power = PowerCoefficients({module: value * (dram_scale if module == "dram" else core_scale)
                               for module, value in watts.items()})
    return replace(base, power=power)


def compare_row(row: pd.Series, calibration: Calibration, prompt_tokens: float,
                hit_rate: float) -> dict[str, Any]:
    """Estimate one measured row and return measured, estimated and error values."""
    spec = row_spec(row, prompt_tokens, hit_rate)
    result = estimate_serving(spec, ServingModel(spec, calibration))
    measured = {"token_j": float(row["energy_per_output_token_J"]),
                "tokens_per_s": float(row["output_tok_per_s"]),
                "power_w": float(row["avg_power_W"]), "itl_ms": float(row["median_itl_ms"])}
    estimated = {"token_j": result.energy_per_output_token_j,
                 "tokens_per_s": result.output_tokens_per_s, "power_w": result.avg_power_w,
                 "itl_ms": result.time_per_output_token_s * 1e3}
    return {
        "model": row["model_id"], "preset": preset_label(spec.model), "task": row["task"],
        "set": "fit" if row["fit_set"] else "held out", "num_gpus": spec.num_gpus,
        "max_num_seqs": int(row["max_num_seqs"]), "batch": spec.batch,
        "output_tokens": float(row["avg_output_len"]),
        **{f"measured_{key}": value for key, value in measured.items()},
        **{f"estimated_{key}": value for key, value in estimated.items()},
        **{f"{key}_error": estimated[key] / measured[key] - 1 for key in measured},
    }


def summarize(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Return mean absolute percentage errors per preset, GPU count and set."""
    frame = pd.DataFrame(results)
    summary = {}
    for (preset, gpus, subset), group in frame.groupby(["preset", "num_gpus", "set"]):
        # Rows of models that share an architecture share a preset (Llama-3.3-70B is
        # estimated as llama-3.1-70b), so a line may cover several models.
        summary[f"{preset} x{gpus} ({subset})"] = {
            f"{key}_mape": round(float(group[f"{key}_error"].abs().mean() * 100), 1)
            for key in ("token_j", "tokens_per_s", "power_w", "itl_ms")
        }
    return summary


def held_out_summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the held-out rows' errors under the names other calibrations use: time per
    output token, average power and energy per output token."""
    frame = pd.DataFrame([item for item in results if item["set"] == "held out"])

    def mape(column: str) -> float:
        return round(float(frame[column].abs().mean() * 100), 1)

    return {"rows": len(frame), "models": sorted(set(frame["preset"])),
            "time_mape": mape("tokens_per_s_error"), "power_mape": mape("power_w_error"),
            "energy_mape": mape("token_j_error")}


def print_table(results: list[dict[str, Any]]) -> None:
    print("| model | GPUs | batch | set | J/token measured | estimated | error "
          "| tok/s measured | estimated | power W measured | estimated |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for item in results:
        print(f"| {item['model']} | {item['num_gpus']} | {item['batch']} | {item['set']} | "
              f"{item['measured_token_j']:.4f} | {item['estimated_token_j']:.4f} | "
              f"{item['token_j_error']:+.1%} | {item['measured_tokens_per_s']:.0f} | "
              f"{item['estimated_tokens_per_s']:.0f} | {item['measured_power_w']:.0f} | "
              f"{item['estimated_power_w']:.0f} |")


def fit(rows: pd.DataFrame, csv_path: Path) -> tuple[Calibration, float, float]:
    """Fit the prompt mix and the power scales on the fit rows; return the calibration."""
    profile = load_profile(GPU_PROFILE)
    base = carried_calibration(profile, REFERENCE_GPU)
    fit_rows = rows[rows["fit_set"]]
    prompt_tokens, hit_rate = fit_prompt_mix(fit_rows, base)
    dram_scale, core_scale = fit_power_scales(fit_rows, base, prompt_tokens, hit_rate)
    calibration = scaled_calibration(base, dram_scale, core_scale)
    calibration = replace(
        calibration,
        kind="calibrated",
        identity={"name": profile.name, "memory_gb": profile.memory_gb,
                  "power_limit_w": profile.power_limit_w},
        conditions={"engine": "vLLM, CUDA graphs", "clocks_mhz": "not recorded (default)"},
        fitted_on={
            "file": f"ML.ENERGY Benchmark v3 ({csv_path.name})",
            "rows": len(fit_rows),
            "models": sorted(set(fit_rows["model_id"])),
            "method": ("power: the a100-pcie-40gb fit carried over by module capacity, then "
                       "its DRAM and SM coefficients scaled to the measured average power; "
                       "time corrections carried over unchanged"),
            "dram_scale": dram_scale,
            "core_scale": core_scale,
            "serving_workload": {"prompt_tokens": prompt_tokens,
                                 "prefix_cache_hit_rate": hit_rate,
                                 "chosen_by": "measured output throughput of the fit rows"},
        },
    )
    return calibration, prompt_tokens, hit_rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV,
                        help="ML.ENERGY v3 H100 serving CSV (default: the shared data copy).")
    parser.add_argument("--fit", action="store_true",
                        help=f"Refit and write {CALIBRATION_PATH.relative_to(REPOSITORY)}.")
    parser.add_argument("--json", type=Path, help="Also write every number to this file.")
    arguments = parser.parse_args(argv)
    if not arguments.csv.is_file():
        print(f"error: measurement file not found: {arguments.csv}", file=sys.stderr)
        return 2
    rows = serving_rows(arguments.csv)
    if arguments.fit:
        calibration, prompt_tokens, hit_rate = fit(rows, arguments.csv)
    else:
        calibration = load_calibration(CALIBRATION_PATH)
        workload = calibration.fitted_on["serving_workload"]
        prompt_tokens, hit_rate = workload["prompt_tokens"], workload["prefix_cache_hit_rate"]
    results = [compare_row(row, calibration, prompt_tokens, hit_rate)
               for _, row in rows.iterrows()]
    summary = summarize(results)
    if arguments.fit:
        calibration.validation = {
            "method": "held-out models of the same file, after fitting on the fit rows",
            "summary": held_out_summary(results),
            "per_set": summary,
        }
        save_calibration(calibration, CALIBRATION_PATH)
        print(f"wrote {CALIBRATION_PATH}")
    scales = calibration.fitted_on
    fit_models = sorted(set(rows[rows["fit_set"]]["model_id"]))
    held_out = sorted(set(rows[~rows["fit_set"]]["model_id"]))
    print(f"Fitted on {', '.join(fit_models)}; held out: {', '.join(held_out)}.")
    print(f"GPU profile {GPU_PROFILE}; prompt mix {prompt_tokens:g} tokens with a prefix-cache "
          f"hit rate of {hit_rate:g}; power scales DRAM {scales['dram_scale']:.3f}, "
          f"SM {scales['core_scale']:.3f}.\n")
    print_table(results)
    print("\nMean absolute errors (%):")
    for name, values in summary.items():
        print(f"- {name}: " + ", ".join(f"{key} {value}" for key, value in values.items()))
    skipped = skipped_dense_models(arguments.csv)
    if skipped:
        print("\nDense models or runs in the file that were not estimated:")
        for model_id, reason in skipped.items():
            print(f"- {model_id}: {reason}")
    if arguments.json:
        arguments.json.write_text(json.dumps(
            {"rows": results, "mape": summary, "not_estimated": skipped}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
