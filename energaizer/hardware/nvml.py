"""NVML through nvidia-ml-py (`pynvml`), behind one small device interface.

This module is the only place that imports `pynvml` and the only place that maps NVML
return codes to exceptions. Readings leave it in SI units: NVML's milliwatts and
millijoules are converted here with `mw_to_w` and `mj_to_j`. `pynvml` is imported on
first use, so energaizer imports on machines without it.

Facts about NVML (nvidia-ml-py 13.x): the total-energy counter is in mJ since the driver
loaded and exists on Volta and newer. `nvmlDeviceGetPowerUsage` is in mW and is a
one-second average on Ampere and newer (except the A100), so samples use the
instantaneous field value (186) where the driver has it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from energaizer.errors import HardwareError
from energaizer.units import mj_to_j, mw_to_w

logger = logging.getLogger(__name__)

# NVML return codes (nvml.h).
NOT_SUPPORTED = 3
NO_PERMISSION = 4
DRIVER_NOT_LOADED = 9
LIBRARY_NOT_FOUND = 12
GPU_IS_LOST = 15
LIB_RM_VERSION_MISMATCH = 18
NOT_READY = 27

# Field ids for nvmlDeviceGetFieldValues (nvml.h).
FIELD_POWER_AVERAGE = 185
FIELD_POWER_INSTANT = 186

_CLOCK_SM = 1
_CLOCK_MEMORY = 2
_TEMPERATURE_GPU = 0
_VALUE_MEMBERS = ("dVal", "uiVal", "ulVal", "ullVal", "sllVal", "siVal", "usVal")


class NvmlError(HardwareError):
    """An NVML call failed; `code` is the NVML return code and `operation` the call."""

    transient = False

    def __init__(self, message: str, *, code: int | None = None, operation: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.operation = operation


class NvmlNotSupportedError(NvmlError):
    """The GPU or driver does not support the query (NVML code 3)."""


class NvmlNoPermissionError(NvmlError):
    """The process lacks the permission the call needs (NVML code 4)."""


class NvmlNotReadyError(NvmlError):
    """The value is not ready yet (NVML code 27); retrying later may succeed."""

    transient = True


class NvmlDriverNotLoadedError(NvmlError):
    """The NVIDIA kernel driver is not loaded (NVML code 9)."""


class NvmlLibraryNotFoundError(NvmlError):
    """libnvidia-ml.so or the nvidia-ml-py package is missing (NVML code 12)."""


class NvmlVersionMismatchError(NvmlError):
    """The NVML library and the kernel driver have different versions (NVML code 18)."""


class NvmlGpuLostError(NvmlError):
    """The GPU fell off the bus or stopped responding (NVML code 15)."""


_ERROR_CLASSES: dict[int, type[NvmlError]] = {
    NOT_SUPPORTED: NvmlNotSupportedError,
    NO_PERMISSION: NvmlNoPermissionError,
    DRIVER_NOT_LOADED: NvmlDriverNotLoadedError,
    LIBRARY_NOT_FOUND: NvmlLibraryNotFoundError,
    GPU_IS_LOST: NvmlGpuLostError,
    LIB_RM_VERSION_MISMATCH: NvmlVersionMismatchError,
    NOT_READY: NvmlNotReadyError,
}

_MESSAGES = {
    LIB_RM_VERSION_MISMATCH: (
        "NVML initialization failed: the NVML library version does not match the loaded "
        "NVIDIA kernel driver, usually after a driver upgrade without a reboot. Reboot, or "
        "reload the nvidia kernel modules."
    ),
    NO_PERMISSION: (
        "NVML initialization failed: permission denied on the NVIDIA device files "
        "(/dev/nvidia*). Run as a user with access to them, or in a container started with "
        "GPU access."
    ),
    LIBRARY_NOT_FOUND: (
        "NVML initialization failed: the NVML library libnvidia-ml.so was not found, so "
        "no NVIDIA driver is installed or it is not on the library path. Install the "
        "NVIDIA driver, or pass --simulate to run against a simulated GPU."
    ),
    DRIVER_NOT_LOADED: (
        "NVML initialization failed: the NVIDIA kernel driver is not loaded. Load it "
        "(modprobe nvidia) or check the driver installation with nvidia-smi."
    ),
}


def nvml_error(code: int | None, operation: str, detail: str = "") -> NvmlError:
    """Build the typed exception for NVML return `code` raised by `operation`."""
    if operation == "nvmlInit" and code in _MESSAGES:
        message = _MESSAGES[code]
    else:
        reason = detail or f"NVML error code {code}"
        message = f"NVML call {operation} failed: {reason} (code {code})."
    return _ERROR_CLASSES.get(code, NvmlError)(message, code=code, operation=operation)


def library() -> Any:
    """Import and return the `pynvml` module; raise NvmlLibraryNotFoundError without it."""
    try:
        import pynvml
    except ImportError:
        raise NvmlLibraryNotFoundError(
            "NVML is unavailable: the Python package nvidia-ml-py (module pynvml) is not "
            "installed. Install it with `pip install nvidia-ml-py`, or pass --simulate.",
            code=LIBRARY_NOT_FOUND, operation="import pynvml",
        ) from None
    return pynvml


def call(operation: str, *args: Any) -> Any:
    """Call `pynvml.<operation>(*args)`, turning NVMLError into a typed NvmlError."""
    nvml = library()
    function: Callable[..., Any] = getattr(nvml, operation)
    try:
        return function(*args)
    except nvml.NVMLError as error:
        code = getattr(error, "value", None)
        raise nvml_error(code, operation, str(error)) from None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Nvml:
    """An initialized NVML session; use as a context manager so it shuts down."""

    def __init__(self) -> None:
        call("nvmlInit")
        logger.debug("NVML initialized")

    def __enter__(self) -> Nvml:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Shut NVML down; errors during shutdown are logged, not raised."""
        try:
            call("nvmlShutdown")
        except NvmlError as error:
            logger.warning("NVML shutdown failed: %s", error)

    def device_count(self) -> int:
        return int(call("nvmlDeviceGetCount"))

    def driver_version(self) -> str:
        return _text(call("nvmlSystemGetDriverVersion"))

    def cuda_version(self) -> str:
        """The highest CUDA version the driver supports, as "major.minor"."""
        version = int(call("nvmlSystemGetCudaDriverVersion"))
        return f"{version // 1000}.{version % 1000 // 10}"

    def handle_by_index(self, index: int) -> Any:
        return call("nvmlDeviceGetHandleByIndex", index)

    def handle_by_uuid(self, uuid: str) -> Any:
        return call("nvmlDeviceGetHandleByUUID", uuid)

    def uuid(self, handle: Any) -> str:
        return _text(call("nvmlDeviceGetUUID", handle))

    def parent_of_mig(self, mig_handle: Any) -> Any:
        return call("nvmlDeviceGetDeviceHandleFromMigDeviceHandle", mig_handle)

    def mig_slice_count(self, parent_handle: Any) -> int:
        """Number of MIG devices that exist on a parent GPU."""
        maximum = int(call("nvmlDeviceGetMaxMigDeviceCount", parent_handle))
        count = 0
        for index in range(maximum):
            try:
                call("nvmlDeviceGetMigDeviceHandleByIndex", parent_handle, index)
            except NvmlError:
                continue
            count += 1
        return count

    def device(self, handle: Any, index: int) -> NvmlDevice:
        """Wrap a device handle; `index` is NVML's index, which follows PCI bus order."""
        return NvmlDevice(handle, index, self.uuid(handle), _text(call("nvmlDeviceGetName", handle)))


class NvmlDevice:
    """One physical GPU seen through NVML, with readings in SI units."""

    simulated = False

    def __init__(self, handle: Any, index: int, uuid: str, name: str) -> None:
        self.handle = handle
        self.index = index
        self.uuid = uuid
        self.name = name

    def total_energy_j(self) -> float:
        """Energy counter in J since the driver loaded (Volta and newer)."""
        return mj_to_j(call("nvmlDeviceGetTotalEnergyConsumption", self.handle))

    def power_instant_w(self) -> float:
        """Instantaneous board power in W, from field value 186."""
        return mw_to_w(self._field(FIELD_POWER_INSTANT, "power instant"))

    def power_average_w(self) -> float:
        """Board power in W as nvmlDeviceGetPowerUsage reports it: a one-second average on
        Ampere and newer except the A100, instantaneous on older GPUs."""
        return mw_to_w(call("nvmlDeviceGetPowerUsage", self.handle))

    def sm_clock_mhz(self) -> float:
        return float(call("nvmlDeviceGetClockInfo", self.handle, _CLOCK_SM))

    def memory_clock_mhz(self) -> float:
        return float(call("nvmlDeviceGetClockInfo", self.handle, _CLOCK_MEMORY))

    def temperature_c(self) -> float:
        return float(call("nvmlDeviceGetTemperature", self.handle, _TEMPERATURE_GPU))

    def power_limit_w(self) -> float:
        """Enforced power limit in W."""
        return mw_to_w(call("nvmlDeviceGetEnforcedPowerLimit", self.handle))

    def memory_total_bytes(self) -> int:
        return int(call("nvmlDeviceGetMemoryInfo", self.handle).total)

    def lock_sm_clocks(self, min_mhz: int, max_mhz: int) -> None:
        """Lock the SM clock range; raises NvmlNoPermissionError without root."""
        call("nvmlDeviceSetGpuLockedClocks", self.handle, min_mhz, max_mhz)

    def reset_sm_clocks(self) -> None:
        call("nvmlDeviceResetGpuLockedClocks", self.handle)

    def _field(self, field_id: int, label: str) -> float:
        (value,) = call("nvmlDeviceGetFieldValues", self.handle, [field_id])
        if value.nvmlReturn != 0:
            raise nvml_error(int(value.nvmlReturn), f"nvmlDeviceGetFieldValues({label})")
        return float(getattr(value.value, _VALUE_MEMBERS[value.valueType]))
