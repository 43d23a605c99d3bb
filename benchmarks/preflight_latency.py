"""Measure the latency of `Preflight.check` after warm-up and print the median.

Usage: python benchmarks/preflight_latency.py [--calls N]

Builds a Preflight for llama-3.1-8b on an H100 SXM5 at 64 requests in flight, runs 200
warm-up checks, then times N checks with time.perf_counter_ns over varied lengths.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from energaizer.budget import Preflight
from energaizer.serving import ServingSpec

WARM_UP_CALLS = 200


def main() -> int:
    parser = argparse.ArgumentParser(description="Median latency of Preflight.check.")
    parser.add_argument("--calls", type=int, default=10_000)
    arguments = parser.parse_args()
    started = time.perf_counter()
    preflight = Preflight(ServingSpec(model="llama-3.1-8b", gpu="h100-sxm5-80gb", batch=64),
                          max_energy_j=200.0)
    build_s = time.perf_counter() - started
    for index in range(WARM_UP_CALLS):
        preflight.check(100 + index, 256)
    timings_ns = []
    for index in range(arguments.calls):
        prompt = 64 + (index * 37) % 8000
        begin = time.perf_counter_ns()
        preflight.check(prompt, 512)
        timings_ns.append(time.perf_counter_ns() - begin)
    median_us = statistics.median(timings_ns) / 1e3
    print(f"Preflight built in {build_s:.2f} s; median check {median_us:.1f} us over "
          f"{arguments.calls} calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
