"""Tell which GPU vendor recorded a trace."""

from __future__ import annotations

import re

from energaizer.trace.model import Trace

_AMD_DEVICE = re.compile(r"\b(AMD|Radeon|Instinct|MI\d{2,3}X?)\b", re.IGNORECASE)
_NVIDIA_DEVICE = re.compile(r"\b(NVIDIA|Tesla|GeForce|Quadro|RTX|TITAN)\b", re.IGNORECASE)
# ROCm kernel names: Tensile GEMMs (`Cijk_...`) and hipBLASLt / MIOpen kernels.
_AMD_KERNEL = re.compile(r"^(Cijk_|Custom_Cijk_|MIOpen|miopen|naive_conv_)")


def detect_vendor(trace: Trace) -> str:
    """Return "nvidia", "amd" or "unknown" from device names, runtime calls and kernels."""
    names = [str(entry.get("name", "")) for entry in trace.device_properties]
    if any(_AMD_DEVICE.search(name) for name in names):
        return "amd"
    if len(trace.runtime) and trace.runtime["name"].str.startswith("hip").any():
        return "amd"
    if len(trace.gpu_activity) and trace.gpu_activity["name"].str.match(_AMD_KERNEL.pattern).any():
        return "amd"
    if any(_NVIDIA_DEVICE.search(name) for name in names):
        return "nvidia"
    if len(trace.runtime) and trace.runtime["name"].str.match(r"^(cuda|cu)[A-Z]").any():
        return "nvidia"
    return "unknown"
