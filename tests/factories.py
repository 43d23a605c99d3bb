"""Small Kineto traces built in code, for tests that need exact control of the input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

A100_PROPERTIES = {
    "id": 0,
    "name": "NVIDIA A100-SXM4-80GB",
    "totalGlobalMem": 85_899_345_920,
    "computeMajor": 8,
    "computeMinor": 0,
    "numSms": 108,
}


def kernel(name: str, ts: float, dur: float, correlation: int, *, stream: int = 7,
           device: int = 0, grid: tuple[int, int, int] = (216, 1, 1),
           block: tuple[int, int, int] = (128, 1, 1), external_id: int | None = None,
           category: str = "kernel") -> dict[str, Any]:
    args: dict[str, Any] = {
        "device": device, "stream": stream, "correlation": correlation,
        "grid": list(grid), "block": list(block),
    }
    if external_id is not None:
        args["External id"] = external_id
    return {"ph": "X", "cat": category, "name": name, "pid": device, "tid": stream,
            "ts": ts, "dur": dur, "args": args}


def memcpy(ts: float, dur: float, correlation: int, nbytes: int = 1 << 20,
           kind: str = "Memcpy DtoD (Device -> Device)") -> dict[str, Any]:
    event = kernel(kind, ts, dur, correlation, category="gpu_memcpy")
    event["args"]["bytes"] = nbytes
    return event


def runtime(name: str, ts: float, dur: float, correlation: int, *, tid: int = 100,
            pid: int = 100, external_id: int | None = None,
            category: str = "cuda_runtime") -> dict[str, Any]:
    args: dict[str, Any] = {"correlation": correlation}
    if external_id is not None:
        args["External id"] = external_id
    return {"ph": "X", "cat": category, "name": name, "pid": pid, "tid": tid,
            "ts": ts, "dur": dur, "args": args}


def cpu_op(name: str, ts: float, dur: float, *, tid: int = 100, pid: int = 100,
           external_id: int | None = None, dims: list | None = None,
           types: list | None = None, category: str = "cpu_op") -> dict[str, Any]:
    args: dict[str, Any] = {}
    if external_id is not None:
        args["External id"] = external_id
    if dims is not None:
        args["Input Dims"] = dims
    if types is not None:
        args["Input type"] = types
    return {"ph": "X", "cat": category, "name": name, "pid": pid, "tid": tid,
            "ts": ts, "dur": dur, "args": args}


def profiler_step(number: int, ts: float, dur: float) -> dict[str, Any]:
    return cpu_op(f"ProfilerStep#{number}", ts, dur, category="user_annotation")


def trace_document(events: list[dict[str, Any]], *, properties: dict | None = A100_PROPERTIES,
                   distributed: dict | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {"schemaVersion": 1}
    if properties is not None:
        document["deviceProperties"] = [properties]
    if distributed is not None:
        document["distributedInfo"] = distributed
    document["traceEvents"] = events
    return document


def write_trace(path: Path, document: Any, *, compress: bool = False) -> Path:
    data = json.dumps(document).encode()
    if compress:
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def training_steps(steps: int = 3, start_us: float = 1_000_000.0,
                   gemm_dims: list | None = None) -> list[dict[str, Any]]:
    """Events of a few steps: per step a linear layer (GEMM), an add and a memcpy, each
    launched from its CPU op, with an idle gap between steps."""
    dims = gemm_dims or [[4096], [2048, 4096], [4096, 4096]]
    events: list[dict[str, Any]] = []
    correlation = 1
    ts = start_us
    for number in range(steps):
        step_start = ts
        events.append(profiler_step(number + 1, step_start, 1000.0))
        events.append(cpu_op("aten::addmm", ts + 10, 40, external_id=correlation,
                             dims=dims, types=["c10::BFloat16"] * 3))
        events.append(runtime("cudaLaunchKernel", ts + 20, 5, correlation, external_id=correlation))
        events.append(kernel("sm80_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x32_stage4_warpsize2x2x1_tensor16x8x16_kernel",
                             ts + 30, 300, correlation, external_id=correlation))
        correlation += 1
        events.append(cpu_op("aten::add", ts + 60, 20, external_id=correlation,
                             dims=[[2048, 4096], [2048, 4096]], types=["c10::BFloat16"] * 2))
        events.append(runtime("cudaLaunchKernel", ts + 65, 5, correlation, external_id=correlation))
        events.append(kernel("void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<c10::BFloat16> >",
                             ts + 340, 50, correlation, external_id=correlation))
        correlation += 1
        events.append(cpu_op("aten::copy_", ts + 90, 20, external_id=correlation))
        events.append(runtime("cudaMemcpyAsync", ts + 95, 5, correlation, external_id=correlation))
        events.append(memcpy(ts + 400, 40, correlation))
        correlation += 1
        ts += 1000.0
    return events
