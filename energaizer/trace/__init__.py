"""Read PyTorch profiler traces into typed tables. Nothing here knows about power."""

from energaizer.trace.model import Trace
from energaizer.trace.reader import RankTrace, is_trace_folder, read_trace, read_trace_folder

__all__ = ["RankTrace", "Trace", "is_trace_folder", "read_trace", "read_trace_folder"]
