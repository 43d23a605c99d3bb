"""A stand-in for the `pynvml` module: one GPU with fixed readings, or a failing init."""

from __future__ import annotations

import types


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(f"fake NVML error {value}")
        self.value = value


class FieldValue:
    def __init__(self, value_mw: int, code: int = 0) -> None:
        self.nvmlReturn = code
        self.valueType = 1  # unsigned int
        self.value = types.SimpleNamespace(uiVal=value_mw)


def fake_pynvml(*, init_error: int | None = None, energy_mj: int = 123_456,
                power_mw: int = 150_000, instant_mw: int = 151_000,
                field_error: int = 0) -> types.SimpleNamespace:
    """Build a module-like object with the pynvml calls energaizer makes."""

    def init() -> None:
        if init_error is not None:
            raise NVMLError(init_error)

    handle = object()
    return types.SimpleNamespace(
        NVMLError=NVMLError,
        nvmlInit=init,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 1,
        nvmlSystemGetDriverVersion=lambda: b"550.54",
        nvmlSystemGetCudaDriverVersion=lambda: 12040,
        nvmlDeviceGetHandleByIndex=lambda index: handle,
        nvmlDeviceGetHandleByUUID=lambda uuid: handle,
        nvmlDeviceGetUUID=lambda h: "GPU-fake-0",
        nvmlDeviceGetName=lambda h: b"NVIDIA A100-PCIE-40GB",
        nvmlDeviceGetTotalEnergyConsumption=lambda h: energy_mj,
        nvmlDeviceGetPowerUsage=lambda h: power_mw,
        nvmlDeviceGetFieldValues=lambda h, ids: [FieldValue(instant_mw, field_error)],
        nvmlDeviceGetEnforcedPowerLimit=lambda h: 250_000,
        nvmlDeviceGetClockInfo=lambda h, kind: 1410,
        nvmlDeviceGetTemperature=lambda h, sensor: 45,
    )
