"""Map the GPUs a user names (CUDA ordinals, GPU UUIDs, MIG UUIDs) to physical devices.

NVML enumerates GPUs in PCI bus order and ignores CUDA_VISIBLE_DEVICES, while CUDA
numbers the visible GPUs fastest first unless CUDA_DEVICE_ORDER=PCI_BUS_ID. So ordinals
are translated to UUIDs first and UUIDs to NVML handles, never index to index. A MIG
slice has no power or energy of its own: it resolves to its parent GPU, whose readings
are shared by every slice on it.
"""

from __future__ import annotations

import enum
import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from energaizer.errors import HardwareError, InputError

logger = logging.getLogger(__name__)


class GpuDevice(Protocol):
    """Interface of a GPU for the measuring code, with every value in SI units.

    Each method raises an `NvmlError` subclass when the query fails, for example
    `NvmlNotSupportedError` when the GPU has no energy counter.
    """

    index: int
    uuid: str
    name: str
    simulated: bool

    def total_energy_j(self) -> float: ...
    def power_instant_w(self) -> float: ...
    def power_average_w(self) -> float: ...
    def sm_clock_mhz(self) -> float: ...
    def memory_clock_mhz(self) -> float: ...
    def temperature_c(self) -> float: ...
    def power_limit_w(self) -> float: ...


class MigSplit(str, enum.Enum):
    """How to attribute a parent GPU's energy to one of its MIG slices."""

    none = "none"  # report the whole parent GPU, marked shared
    equal = "equal"  # divide the parent's energy evenly among its slices


@dataclass
class ResolvedDevice:
    """A GPU to measure: the physical device and how the user named it.

    `shared` is True when the request was a MIG slice, so the readings are the parent
    GPU's and cover every slice on it. `slices` is the number of MIG devices on the parent
    (1 without MIG).
    """

    device: Any
    request: str
    cuda_ordinal: int | None = None
    mig_uuid: str | None = None
    shared: bool = False
    slices: int = 1


def visible_entries(environ: Mapping[str, str] | None = None) -> list[str] | None:
    """Return the entries of CUDA_VISIBLE_DEVICES, or None when it is unset."""
    environ = os.environ if environ is None else environ
    value = environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    entries = []
    for entry in value.split(","):
        entry = entry.strip()
        # CUDA stops at the first invalid entry, so an entry such as -1 hides the rest.
        if not entry or entry.startswith("-"):
            break
        entries.append(entry)
    return entries


def _all_uuids(backend: Any) -> list[str]:
    return [backend.uuid(backend.handle_by_index(i)) for i in range(backend.device_count())]


def _match_uuid(prefix: str, uuids: list[str]) -> str:
    """Return the one UUID starting with `prefix`, as CUDA accepts unique prefixes."""
    matches = [uuid for uuid in uuids if uuid.startswith(prefix)]
    if len(matches) != 1:
        found = "no GPU" if not matches else f"{len(matches)} GPUs"
        raise InputError(f"GPU UUID {prefix!r} matches {found}; NVML lists {', '.join(uuids)}.")
    return matches[0]


def cuda_visible_uuids(backend: Any, environ: Mapping[str, str] | None = None) -> list[str]:
    """Return the UUIDs of the GPUs visible to CUDA, indexed by CUDA ordinal.

    Entries may be MIG UUIDs. Plain indices in CUDA_VISIBLE_DEVICES are taken in PCI bus
    order, which is CUDA's order only with CUDA_DEVICE_ORDER=PCI_BUS_ID or when every GPU
    is the same model, so a mixed machine without it gets a warning.
    """
    environ = os.environ if environ is None else environ
    uuids = _all_uuids(backend)
    entries = visible_entries(environ)
    pci_order = environ.get("CUDA_DEVICE_ORDER", "FASTEST_FIRST") == "PCI_BUS_ID"
    names = {backend.device(backend.handle_by_index(i), i).name for i in range(len(uuids))}
    uses_indices = entries is None or any(entry.isdigit() for entry in entries)
    if uses_indices and not pci_order and len(names) > 1:
        warnings.warn(
            "CUDA orders these different GPU models fastest first, NVML by PCI bus, so CUDA "
            "ordinals may name other GPUs than intended. Set CUDA_DEVICE_ORDER=PCI_BUS_ID or "
            "select GPUs by UUID.",
            stacklevel=2,
        )
    if entries is None:
        return uuids
    visible = []
    for entry in entries:
        if entry.isdigit():
            if int(entry) >= len(uuids):
                break  # CUDA also stops at an index past the last GPU
            visible.append(uuids[int(entry)])
        elif entry.startswith("MIG-"):
            visible.append(entry)
        else:
            visible.append(_match_uuid(entry, uuids))
    return visible


def resolve_devices(backend: Any, requests: list[str] | None = None,
                    environ: Mapping[str, str] | None = None) -> list[ResolvedDevice]:
    """Resolve CUDA ordinals, GPU UUIDs or MIG UUIDs to physical GPUs, once each.

    With no requests every GPU visible to CUDA is measured. Several MIG slices of one GPU
    resolve to that GPU once.
    """
    visible = cuda_visible_uuids(backend, environ)
    if not requests:
        requests = [str(ordinal) for ordinal in range(len(visible))]
    resolved: dict[str, ResolvedDevice] = {}
    for request in requests:
        item = _resolve_one(backend, request, visible)
        if item.device.uuid in resolved:
            logger.info("%s resolves to GPU %s, already selected", request, item.device.uuid)
            continue
        resolved[item.device.uuid] = item
    if not resolved:
        raise HardwareError("No GPU is visible to CUDA; check CUDA_VISIBLE_DEVICES.")
    return list(resolved.values())


def _resolve_one(backend: Any, request: str, visible: list[str]) -> ResolvedDevice:
    ordinal = None
    uuid = request
    if request.isdigit():
        ordinal = int(request)
        if ordinal >= len(visible):
            raise InputError(
                f"CUDA device {ordinal} does not exist; {len(visible)} GPU(s) are visible "
                "(CUDA_VISIBLE_DEVICES applies)."
            )
        uuid = visible[ordinal]
    if uuid.startswith("MIG-"):
        return _resolve_mig(backend, request, uuid, ordinal)
    uuids = _all_uuids(backend)
    uuid = _match_uuid(uuid, uuids)
    if ordinal is None and uuid in visible:
        ordinal = visible.index(uuid)
    device = backend.device(backend.handle_by_uuid(uuid), uuids.index(uuid))
    return ResolvedDevice(device, request, cuda_ordinal=ordinal)


def _resolve_mig(backend: Any, request: str, mig_uuid: str, ordinal: int | None) -> ResolvedDevice:
    parent = backend.parent_of_mig(backend.handle_by_uuid(mig_uuid))
    parent_uuid = backend.uuid(parent)
    device = backend.device(parent, _all_uuids(backend).index(parent_uuid))
    slices = max(backend.mig_slice_count(parent), 1)
    logger.info("MIG device %s is a slice of GPU %s (%d slices)", mig_uuid, parent_uuid, slices)
    return ResolvedDevice(device, request, cuda_ordinal=ordinal, mig_uuid=mig_uuid,
                          shared=True, slices=slices)
