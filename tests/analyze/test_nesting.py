"""CPU op nesting tolerates rounding, clips overruns and reports real violations."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from energaizer.analyze import nesting as nesting_module
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


# The array-based nesting against the stack walk it replaces for well-nested threads.

def _walk_only(cpu_ops: pd.DataFrame, runtime: pd.DataFrame):
    with mock.patch.object(nesting_module, "_nest_thread_by_counting", return_value=False):
        return nest_operators(cpu_ops, runtime)


def _assert_same_nesting(actual, expected) -> None:
    assert actual.parent.tolist() == expected.parent.tolist()
    assert actual.launch_parent.tolist() == expected.launch_parent.tolist()
    assert actual.self_time_us.tolist() == expected.self_time_us.tolist()
    assert actual.violations == expected.violations
    assert actual.max_overrun_us == expected.max_overrun_us


def _nested_rows(draw, start: float, end: float, depth: int) -> list[tuple[float, float]]:
    """Intervals inside [start, end) that nest, some of zero length, some touching."""
    rows = []
    cursor = start
    for _ in range(draw(st.integers(0, 3 if depth < 3 else 0))):
        first = draw(st.floats(cursor, end))
        last = draw(st.floats(first, end))
        rows.append((first, last - first))
        rows.extend(_nested_rows(draw, first, last, depth + 1))
        cursor = last
    return rows


@st.composite
def thread_items(draw) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ops and launches on up to three threads, nested or with random overlaps."""
    ops, launches = [], []
    for tid in range(draw(st.integers(1, 3))):
        base = draw(st.sampled_from([0.0, 1.6e15]))
        if draw(st.booleans()):
            rows = _nested_rows(draw, base, base + 100.0, 0)
        else:
            rows = draw(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 15)), max_size=12))
            rows = [(base + start, float(duration)) for start, duration in rows]
        ops += [(f"op{len(ops) + i}", start, duration, tid) for i, (start, duration) in
                enumerate(rows)]
        times = draw(st.lists(st.floats(base, base + 110.0), max_size=6))
        launches += [("cudaLaunchKernel", time, tid) for time in times]
    cpu_ops = pd.DataFrame({
        "name": [row[0] for row in ops],
        "ts_us": np.array([row[1] for row in ops], dtype=float),
        "dur_us": np.array([row[2] for row in ops], dtype=float),
        "pid": 1, "tid": np.array([row[3] for row in ops], dtype=np.int64),
    })
    runtime = pd.DataFrame({
        "name": [row[0] for row in launches],
        "ts_us": np.array([row[1] for row in launches], dtype=float), "dur_us": 1.0,
        "pid": 1, "tid": np.array([row[2] for row in launches], dtype=np.int64),
    })
    return cpu_ops, runtime


@settings(max_examples=300, deadline=None)
@given(items=thread_items())
def test_counting_matches_stack_walk(items):
    cpu_ops, runtime = items
    _assert_same_nesting(nest_operators(cpu_ops, runtime), _walk_only(cpu_ops, runtime))


def test_nested_thread_skips_walk():
    ops = _ops([("a", 0.0, 100.0), ("b", 10.0, 30.0), ("c", 15.0, 0.0), ("d", 15.0, 5.0),
                ("e", 50.0, 20.0), ("f", 70.0, 0.0)])
    runtime = _runtime([("cudaLaunchKernel", 15.0), ("cudaLaunchKernel", 70.0)])
    with mock.patch.object(nesting_module, "_nest_thread_by_walk") as walk:
        nesting = nest_operators(ops, runtime)
    walk.assert_not_called()
    _assert_same_nesting(nesting, _walk_only(ops, runtime))
    # At one start the longer op comes first, so the zero-length "c" sits inside "d".
    assert nesting.parent.tolist() == [NO_PARENT, 0, 3, 1, 0, 0]
    assert nesting.launch_parent.tolist() == [3, 0]


def test_overrunning_thread_is_walked():
    ops = _ops([("parent", 100.0, 10.0), ("child", 105.0, 8.0)])
    with mock.patch.object(nesting_module, "_nest_thread_by_walk",
                           wraps=nesting_module._nest_thread_by_walk) as walk:
        nesting = nest_operators(ops, _runtime([]))
    walk.assert_called_once()
    assert nesting.violations == 1
