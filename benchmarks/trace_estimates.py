"""Time `energaizer.estimate` on every public trace next to the repository.

Usage: python benchmarks/trace_estimates.py [SHARED_DATA_DIR]

Prints one line per trace (seconds, energy, steps) and the slowest time; the target is
under 3 s per trace on a 2-core machine.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import energaizer
from energaizer.errors import EnergaizerError

TARGET_S = 3.0


def main() -> int:
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    traces = sorted((data / "traces").glob("*/*.json*"))
    traces.append(data / "traces" / "param" / "v100sxm32_dlrm_8rank_kineto.tar.gz")
    slowest = 0.0
    for path in traces:
        start = time.perf_counter()
        try:
            result = energaizer.estimate(trace=path)
            outcome = f"{result.energy_j:12.3f} J  {len(result.steps):3d} steps  {result.gpu.profile}"
        except EnergaizerError as error:
            outcome = f"rejected: {type(error).__name__}"
        elapsed = time.perf_counter() - start
        slowest = max(slowest, elapsed)
        print(f"{elapsed:6.2f} s  {path.relative_to(data)}  {outcome}")
    print(f"slowest: {slowest:.2f} s (target under {TARGET_S:.0f} s)")
    return 0 if slowest < TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
