"""Resolving CUDA ordinals, UUIDs and MIG UUIDs to physical GPUs."""

from __future__ import annotations

import pytest

from energaizer.errors import InputError
from energaizer.hardware.devices import cuda_visible_uuids, resolve_devices, visible_entries
from energaizer.hardware.simulated import ManualClock, SimulatedGpu, SimulatedNvml


def _backend(names=("A100", "A100", "A100"), mig=None) -> SimulatedNvml:
    clock = ManualClock()
    gpus = [SimulatedGpu(clock, index=i, uuid=f"GPU-{i}aaa", name=name)
            for i, name in enumerate(names)]
    return SimulatedNvml(gpus, mig=mig)


def test_visible_entries_stop_at_invalid():
    assert visible_entries({"CUDA_VISIBLE_DEVICES": "2,0,-1,1"}) == ["2", "0"]
    assert visible_entries({}) is None
    assert visible_entries({"CUDA_VISIBLE_DEVICES": ""}) == []


def test_ordinals_follow_cuda_visible_devices():
    backend = _backend()
    environ = {"CUDA_VISIBLE_DEVICES": "2,0", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    resolved = resolve_devices(backend, ["0", "1"], environ)
    assert [item.device.uuid for item in resolved] == ["GPU-2aaa", "GPU-0aaa"]
    assert [item.cuda_ordinal for item in resolved] == [0, 1]


def test_uuid_prefix_resolves():
    backend = _backend()
    (item,) = resolve_devices(backend, ["GPU-1"], {})
    assert item.device.uuid == "GPU-1aaa"
    assert item.cuda_ordinal == 1


def test_missing_ordinal_raises_input_error():
    backend = _backend()
    with pytest.raises(InputError, match="CUDA device 3 does not exist"):
        resolve_devices(backend, ["3"], {"CUDA_VISIBLE_DEVICES": "0,1,2"})


def test_unknown_uuid_raises_input_error():
    with pytest.raises(InputError, match="matches no GPU"):
        resolve_devices(_backend(), ["GPU-zzz"], {})


def test_mig_uuid_resolves_to_parent_shared():
    backend = _backend(mig={"MIG-a": 1, "MIG-b": 1, "MIG-c": 2})
    (item,) = resolve_devices(backend, None, {"CUDA_VISIBLE_DEVICES": "MIG-a"})
    assert item.device.uuid == "GPU-1aaa"
    assert item.shared
    assert item.mig_uuid == "MIG-a"
    assert item.slices == 2
    assert item.cuda_ordinal == 0


def test_two_slices_of_one_gpu_measured_once():
    backend = _backend(mig={"MIG-a": 1, "MIG-b": 1})
    resolved = resolve_devices(backend, ["MIG-a", "MIG-b"], {})
    assert len(resolved) == 1


def test_mixed_models_warn_about_ordinals():
    backend = _backend(names=("A100", "T4"))
    with pytest.warns(UserWarning, match="CUDA_DEVICE_ORDER=PCI_BUS_ID"):
        cuda_visible_uuids(backend, {})
