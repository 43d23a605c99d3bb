"""Time `energaizer.estimate` on model presets: the first call and the median of repeats.

Usage: python benchmarks/estimate_speed.py [REPEATS]

For each preset the first estimate captures the model (or reads its cached shape
template); later estimates with other batch sizes and sequence lengths reuse it. The
target is a median under 0.2 s per estimate after the first.
"""

from __future__ import annotations

import statistics
import sys
import time

import energaizer

TARGET_S = 0.2
CASES = [
    ("gpt2", "a100-pcie-40gb", "prefill"),
    ("bert-large", "a10", "prefill"),
    ("llama-3.1-8b", "h100-sxm5-80gb", "decode"),
    ("llama-3.1-70b", "h200-sxm-141gb", "prefill"),
    ("resnet-50", "l4", "train"),
]


def main() -> int:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    medians = []
    for model, gpu, phase in CASES:
        start = time.perf_counter()
        energaizer.estimate(model=model, gpu=gpu, phase=phase, batch=1, seq=128)
        first = time.perf_counter() - start
        times = []
        for index in range(repeats):
            start = time.perf_counter()
            energaizer.estimate(model=model, gpu=gpu, phase=phase, batch=1 + index % 8,
                                seq=128 * (1 + index % 4))
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        medians.append(median)
        print(f"{model:14s} {phase:8s} on {gpu:16s} first {first:6.3f} s, "
              f"median of {repeats} {median:6.3f} s, max {max(times):6.3f} s")
    worst = max(medians)
    print(f"slowest median: {worst:.3f} s (target under {TARGET_S} s)")
    return 0 if worst < TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
