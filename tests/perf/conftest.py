"""GPU profiles shared by the performance model tests."""

from __future__ import annotations

import pytest

from energaizer.hardware.profiles import GpuProfile, load_profile


@pytest.fixture(scope="session")
def a100() -> GpuProfile:
    """A100 PCIe 40GB: 108 SMs, 1410 MHz boost, 1555 GB/s, 312 TFLOPS bf16."""
    return load_profile("a100-pcie-40gb")


@pytest.fixture(scope="session")
def a100_sxm() -> GpuProfile:
    """A100 SXM4 80GB, with 600 GB/s of NVLink."""
    return load_profile("a100-sxm4-80gb")


@pytest.fixture(scope="session")
def h100() -> GpuProfile:
    """H100 SXM5 80GB: 132 SMs, 989 TFLOPS bf16."""
    return load_profile("h100-sxm5-80gb")


@pytest.fixture(scope="session")
def t4() -> GpuProfile:
    """T4: no NVLink, so collectives use PCIe."""
    return load_profile("t4")
