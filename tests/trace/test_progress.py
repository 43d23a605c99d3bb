"""Reading reports its progress: bytes of a trace file, or traces of a folder."""

from __future__ import annotations

from factories import trace_document, training_steps, write_trace

from energaizer.trace import read_trace, read_trace_folder


def _recorder() -> tuple[list[tuple[int, int]], object]:
    calls: list[tuple[int, int]] = []
    return calls, lambda done, total: calls.append((done, total))


def test_small_trace_progress_reaches_file_size(tmp_path):
    document = trace_document(training_steps(steps=2))
    for path in (write_trace(tmp_path / "t.json", document),
                 write_trace(tmp_path / "t.json.gz", document, compress=True)):
        calls, progress = _recorder()
        read_trace(path, progress=progress)
        size = path.stat().st_size
        assert calls
        assert calls[-1] == (size, size)
        assert all(total == size for _, total in calls)


def test_folder_progress_ticks_per_trace(tmp_path):
    for rank in range(3):
        document = trace_document(training_steps(steps=2), distributed={"rank": rank})
        write_trace(tmp_path / f"rank{rank}.json", document)
    calls, progress = _recorder()
    ranks = read_trace_folder(tmp_path, progress=progress)
    assert [item.rank for item in ranks] == [0, 1, 2]
    assert calls == [(1, 3), (2, 3), (3, 3)]
