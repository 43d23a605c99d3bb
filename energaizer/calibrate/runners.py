"""Run one microbenchmark point and measure it, on a simulated GPU or on CUDA.

A runner's `measure(point, warmup_s, steady_s)` returns the point's record: per-call
time in s, mean power in W over the steady window, the window's energy in J and the
conditions seen (SM clock, temperature, power limit). Clocks and limits are only read,
never set, except by the opt-in clock lock of `CudaRunner`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from energaizer.calibrate.plan import ROW, PlanPoint
from energaizer.errors import HardwareError
from energaizer.hardware.nvml import NvmlNoPermissionError
from energaizer.hardware.profiles import GpuProfile
from energaizer.hardware.simulated import ManualClock, SimulatedGpu, SimulatedNvml
from energaizer.measure.meter import Meter
from energaizer.perf import predict_op
from energaizer.power.coefficients import CORE_MODULES
from energaizer.power.dvfs import dvfs_curves

logger = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 0.05


def _record(point: PlanPoint, meter: Meter, time_s: float | None, calls: int, gpu: Any) -> dict:
    assert meter.result is not None
    reading = meter.result.gpus[0]
    if reading.energy_j is None:
        raise HardwareError(f"Calibration point {point.key}: no energy reading ({reading.status}).")
    return {
        "key": point.key, "kind": point.kind, "time_s": time_s, "calls": calls,
        "power_w": reading.avg_power_w, "energy_j": reading.energy_j,
        "window_s": reading.duration_s, "method": reading.method,
        "sm_clock_mhz": gpu.sm_clock_mhz(), "temperature_c": gpu.temperature_c(),
        "power_limit_w": gpu.power_limit_w(), "simulated": reading.simulated,
        "warnings": reading.warnings,
    }


class SimulatedRunner:
    """Points on a simulated GPU whose power follows `coefficients` (W per module).

    A point "runs" instantly on a fake clock. The performance model gives the op's time
    and module activity, and the GPU draws idle power plus coefficient x activity. Core
    modules are scaled by (V/V_max)^2 f/f_max, as in the fitted power model.
    """

    def __init__(self, profile: GpuProfile, coefficients: dict[str, float], *,
                 noise_w: float = 1.0, seed: int = 0) -> None:
        self.profile = profile
        self.clock = ManualClock()
        self.clock_mhz = profile.boost_clock_mhz
        curves = dvfs_curves(profile)
        self.scale = curves.dynamic_scale(self.clock_mhz)
        self.gpu = SimulatedGpu(self.clock, name=f"Simulated {profile.name}",
                                idle_power_w=curves.idle_power_w(self.clock_mhz),
                                coefficients=coefficients, power_limit_w=profile.power_limit_w,
                                sm_clock_mhz=self.clock_mhz, noise_w=noise_w, seed=seed)

    def identity(self) -> dict[str, Any]:
        return {"name": self.gpu.name, "uuid": self.gpu.uuid, "memory_gb": self.profile.memory_gb,
                "power_limit_w": self.profile.power_limit_w, "driver": "simulated",
                "cuda": "simulated", "simulated": True}

    def measure(self, point: PlanPoint, warmup_s: float, steady_s: float) -> dict:
        op = point.op()
        time_s = None
        if op is None:
            self.gpu.set_idle()
        else:
            prediction = predict_op(op, self.profile, self.clock_mhz)
            activity = dict(prediction.activity, active=1.0)
            weighted = {module: share * (self.scale if module in CORE_MODULES else 1.0)
                        for module, share in activity.items()}
            self.gpu.set_activity(weighted)
            time_s = prediction.time_s
        self.clock.advance(warmup_s)
        meter = Meter(backend=SimulatedNvml([self.gpu]), clock=self.clock, threaded=False,
                      interval_s=SAMPLE_INTERVAL_S)
        with meter:
            meter.sampler.run_for(steady_s)
        calls = 0 if time_s is None else int(steady_s / time_s)
        return _record(point, meter, time_s, calls, self.gpu)

    def close(self) -> None:
        pass


class CudaRunner:
    """Points on a CUDA GPU with torch, measured through an open NVML session.

    `lock_clocks_mhz` locks the SM clock for the run and restores it on `close`; without
    permission it raises HardwareError before any point runs.
    """

    def __init__(self, nvml: Any, device: Any, cuda_ordinal: int,
                 lock_clocks_mhz: int | None = None) -> None:
        import torch

        if not torch.cuda.is_available():
            raise HardwareError("CUDA is not available to torch; install a CUDA build of torch.")
        self.torch = torch
        self.nvml, self.device, self.ordinal = nvml, device, cuda_ordinal
        self.cuda = torch.device("cuda", cuda_ordinal)
        self.locked = False
        if lock_clocks_mhz is not None:
            try:
                device.lock_sm_clocks(lock_clocks_mhz, lock_clocks_mhz)
            except NvmlNoPermissionError:
                raise HardwareError(
                    "Locking SM clocks needs root or administrator rights; run as root or "
                    "drop --lock-clocks.") from None
            self.locked = True

    def identity(self) -> dict[str, Any]:
        return {"name": self.device.name, "uuid": self.device.uuid,
                "memory_gb": round(self.device.memory_total_bytes() / 1e9, 1),
                "power_limit_w": self.device.power_limit_w(),
                "driver": self.nvml.driver_version(), "cuda": self.nvml.cuda_version(),
                "simulated": False}

    def measure(self, point: PlanPoint, warmup_s: float, steady_s: float) -> dict:
        kernel = self._kernel(point)
        self._repeat(kernel, warmup_s)
        meter = Meter(gpus=[self.device.uuid], backend=self.nvml, interval_s=SAMPLE_INTERVAL_S)
        with meter:
            calls = self._repeat(kernel, steady_s)
        time_s = meter.result.duration_s / calls if kernel is not None and calls else None
        return _record(point, meter, time_s, calls, self.device)

    def _repeat(self, kernel: Callable[[], Any] | None, seconds: float) -> int:
        """Run `kernel` back to back for about `seconds`; return the number of calls."""
        end = time.monotonic() + seconds
        calls = 0
        while time.monotonic() < end:
            if kernel is None:
                time.sleep(min(0.05, max(end - time.monotonic(), 0.0)))
                continue
            for _ in range(10):
                kernel()
            calls += 10
            self.torch.cuda.synchronize(self.cuda)
        return calls

    def _kernel(self, point: PlanPoint) -> Callable[[], Any] | None:
        # NOTE: these torch kernels have not been run on a GPU yet; the simulated runner
        # is the tested path.
        torch, p = self.torch, point.params
        if point.kind == "idle":
            return None
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[p["dtype"]]
        make = lambda *shape: torch.randn(*shape, device=self.cuda, dtype=dtype)
        if point.kind == "gemm":
            a, b = make(p["m"], p["k"]), make(p["k"], p["n"])
            return lambda: torch.matmul(a, b)
        if point.kind == "attention":
            shape = (p["batch"], p["heads"], p["seq"], p["head_dim"])
            q, k, v = make(*shape), make(*shape), make(*shape)
            return lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v)
        x = make(p["elements"] // ROW, ROW)
        y = torch.empty_like(x)
        kernels = {
            "copy": lambda: y.copy_(x),
            "elementwise": lambda: torch.add(x, y, out=y),
            "reduction": lambda: x.sum(),
            "softmax": lambda: torch.softmax(x, dim=-1),
            "layernorm": lambda: torch.nn.functional.layer_norm(x, (ROW,)),
        }
        return kernels[point.kind]

    def close(self) -> None:
        if self.locked:
            self.device.reset_sm_clocks()
            self.locked = False
