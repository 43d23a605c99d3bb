"""Time a sweep of 10,000 preset configurations, then the same sweep from the cache.

Usage: python benchmarks/sweep_throughput.py [--workers N] [--items 10000]

The grid has 10,000 items: 5 model presets x 4 GPU profiles x 5 batch sizes x 5
sequence lengths x 2 dtypes x 10 clocks. With `--items N`, only the first N run. The target is the
full grid in under 60 s on a 2-core machine, and a cached rerun in a few seconds.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from energaizer.sweep import run_sweep
from energaizer.sweep.cache import ResultCache
from energaizer.sweep.grid import grid_from_mapping

TARGET_S = 60.0
GRID = {
    "models": ["llama-3.1-8b", "mistral-7b", "qwen2-1.5b", "opt-1.3b", "gpt2"],
    "gpus": ["a100-sxm4-80gb", "h100-sxm5-80gb", "l40s", "a10g"],
    "batch": [1, 2, 4, 8, 16],
    "seq": [128, 256, 512, 1024, 2048],
    "dtypes": ["bf16", "fp16"],
    "clocks_mhz": [None, 600, 700, 800, 900, 1000, 1100, 1200, 1300, 1400],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=None, help="worker processes")
    parser.add_argument("--items", type=int, default=None, help="estimate only the first N items")
    options = parser.parse_args()

    grid = grid_from_mapping(dict(GRID))
    if options.items is not None:
        first_items = grid.items()[: options.items]
        grid.items = lambda: first_items  # type: ignore[method-assign]
    count = len(grid.items())
    with tempfile.TemporaryDirectory() as folder:
        cache = ResultCache(folder)
        start = time.perf_counter()
        result = run_sweep(grid, workers=options.workers, cache=cache)
        elapsed = time.perf_counter() - start
        print(f"{count} items in {elapsed:.1f} s ({count / elapsed:.0f} items/s), "
              f"{result.failed_items} failed")
        for row in [row for row in result.rows if row.get("error")][:5]:
            print(f"  failed: {row['model']} {row['gpu']}: {row['error'][:160]}")

        start = time.perf_counter()
        rerun = run_sweep(grid, workers=options.workers, cache=cache)
        cached_s = time.perf_counter() - start
        print(f"rerun: {rerun.cached_items} of {count} items from the cache in {cached_s:.1f} s")
    print(f"target: {TARGET_S:.0f} s for 10,000 items")
    return 0 if elapsed * 10_000 / count < TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
