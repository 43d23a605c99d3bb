"""CPU op nesting tolerates rounding, clips overruns and reports real violations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from energaizer.analyze.nesting import NO_PARENT, nest_operators


def _ops(rows: list[tuple[str, float, float]], tid: int = 1) -> pd.DataFrame:
    return pd.DataFrame({
        "name": [r[0] for r in rows],
        "ts_us": np.array([r[1] for r in rows], dtype=float),
        "dur_us": np.array([r[2] for r in rows], dtype=float),
        "pid": 1, "tid": tid,
    })


def _runtime(rows: list[tuple[str, float]], tid: int = 1) -> pd.DataFrame:
    return pd.DataFrame({
        "name": [r[0] for r in rows], "ts_us": [r[1] for r in rows], "dur_us": 1.0,
        "pid": 1, "tid": tid,
    })


def test_child_overrunning_by_rounding_is_clipped():
    nesting = nest_operators(_ops([("parent", 100.000, 10.000), ("child", 105.000, 5.001)]),
                             _runtime([]))
    assert nesting.parent.tolist() == [NO_PARENT, 0]
    assert nesting.violations == 0
    assert nesting.self_time_us[0] == pytest.approx(5.0)
    assert nesting.self_time_us[1] == pytest.approx(5.0)


def test_child_ending_3us_late_is_a_violation():
    nesting = nest_operators(_ops([("parent", 100.0, 10.0), ("child", 105.0, 8.0)]), _runtime([]))
    assert nesting.violations == 1
    assert nesting.max_overrun_us == pytest.approx(3.0)
    assert nesting.parent[1] == 0
    assert (nesting.self_time_us >= 0).all()


def test_self_time_never_negative_with_many_children():
    rows = [("parent", 0.0, 10.0)] + [(f"c{i}", 1.0 + i, 3.0) for i in range(8)]
    nesting = nest_operators(_ops(rows), _runtime([]))
    assert (nesting.self_time_us >= 0).all()
    assert nesting.self_time_us[0] == pytest.approx(1.0)


def test_siblings_and_deep_nesting():
    rows = [("a", 0.0, 100.0), ("b", 10.0, 30.0), ("c", 15.0, 5.0), ("d", 50.0, 20.0)]
    nesting = nest_operators(_ops(rows), _runtime([]))
    assert nesting.parent.tolist() == [NO_PARENT, 0, 1, 0]
    assert nesting.self_time_us[0] == pytest.approx(50.0)
    assert nesting.self_time_us[1] == pytest.approx(25.0)


def test_threads_nest_separately():
    ops = pd.concat([_ops([("a", 0.0, 100.0)], tid=1), _ops([("b", 10.0, 5.0)], tid=2)],
                    ignore_index=True)
    nesting = nest_operators(ops, _runtime([]))
    assert nesting.parent.tolist() == [NO_PARENT, NO_PARENT]


def test_launch_placed_in_innermost_op():
    ops = _ops([("outer", 0.0, 100.0), ("inner", 10.0, 20.0)])
    runtime = _runtime([("cudaLaunchKernel", 15.0), ("cudaLaunchKernel", 50.0), ("x", 500.0)])
    nesting = nest_operators(ops, runtime)
    assert nesting.launch_parent.tolist() == [1, 0, NO_PARENT]
