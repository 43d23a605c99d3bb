"""Predict the Zeus (NSDI 2023) training runs under GPU power limits.

The published summaries (Apache-2.0) give, per GPU, network, batch size, optimizer and
power limit, the time per epoch and the average power. energaizer predicts one training
step at each power limit with the GPU's default calibration; lowering the limit lowers
the clock, so power falls to the limit and time grows. Compared: average power, and time
relative to the same run at the highest limit (epoch time also holds data loading, which
the model does not see, so absolute epoch times are not compared).

Assumptions, stated because the summaries do not record them: training in fp32; BERT
base fine-tuning on SQuAD at 384 tokens and on Sentiment140 at 128 tokens; ResNet-50 on
ImageNet at 224 x 224 (the preset's image size); the V100 is the 250 W PCIe board (the
highest limit in the V100 summary is 250 W).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from energaizer.calibrate.profile import calibration_for
from energaizer.hardware.profiles import load_profile
from energaizer.power.simulate import simulate_workload
from energaizer.workload.build import model_workload

GPUS = {"a40": "a40", "p100": "p100-pcie-16gb", "rtx6000": "rtx-6000", "v100": "v100-pcie-16gb"}
NETWORKS = {  # (dataset, network) -> (preset, sequence length)
    ("imagenet", "resnet50"): ("resnet-50", None),
    ("squad", "bert_base_uncased"): ("bert-base", 384),
    ("sentiment140", "bert_base_uncased"): ("bert-base", 128),
}


def _predict(preset: str, batch: int, seq: int | None, gpu: str, limit_w: float) -> tuple[float, float]:
    profile = load_profile(gpu)
    workload = model_workload(preset, batch=batch, seq=seq, dtype="fp32", phase="train")
    run = simulate_workload(workload, profile, calibration_for(profile), power_limit_w=limit_w)
    return run.avg_power_w, run.duration_s


def validate_zeus(folder: Path, quiet: bool = False) -> dict[str, Any]:
    """Compare predictions with every covered row; print and return the errors."""
    rows = []
    for short, gpu in GPUS.items():
        frame = pd.read_csv(folder / f"summary_power_{short}.csv")
        for (dataset, network), (preset, seq) in NETWORKS.items():
            runs = frame[(frame["dataset"] == dataset) & (frame["network"] == network)]
            for (batch, optimizer), group in runs.groupby(["batch_size", "optimizer"]):
                top = group["power_limit"].max()
                _, top_time = _predict(preset, int(batch), seq, gpu, float(top))
                measured_top = float(group.loc[group["power_limit"] == top, "time_per_epoch"].iloc[0])
                for record in group.itertuples():
                    power, time = _predict(preset, int(batch), seq, gpu, float(record.power_limit))
                    rows.append({
                        "gpu": gpu, "network": f"{dataset}/{network}", "batch": int(batch),
                        "optimizer": optimizer, "power_limit_w": float(record.power_limit),
                        "measured_power_w": float(record.average_power), "predicted_power_w": power,
                        "measured_time_ratio": float(record.time_per_epoch) / measured_top,
                        "predicted_time_ratio": time / top_time,
                    })
    table = pd.DataFrame(rows)
    table["power_error"] = (table.predicted_power_w - table.measured_power_w).abs() / table.measured_power_w
    table["time_ratio_error"] = ((table.predicted_time_ratio - table.measured_time_ratio).abs()
                                 / table.measured_time_ratio)
    result = {"rows": len(table), "power_mape": 100 * float(table.power_error.mean()),
              "time_ratio_mape": 100 * float(table.time_ratio_error.mean()), "per_gpu": {}}
    for gpu, group in table.groupby("gpu"):
        result["per_gpu"][gpu] = {"rows": len(group), "power_mape": 100 * float(group.power_error.mean()),
                                  "time_ratio_mape": 100 * float(group.time_ratio_error.mean())}
    if not quiet:
        print("\n| Zeus GPU | rows | average power MAPE % | time vs highest limit MAPE % |")
        print("|---|---|---|---|")
        for gpu, block in result["per_gpu"].items():
            print(f"| {gpu} | {block['rows']} | {block['power_mape']:.1f} | {block['time_ratio_mape']:.1f} |")
        print(f"| all | {result['rows']} | {result['power_mape']:.1f} | {result['time_ratio_mape']:.1f} |")
    return result


if __name__ == "__main__":
    import sys

    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "measurements" / "zeus_nsdi23"
    validate_zeus(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
