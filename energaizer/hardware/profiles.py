"""GPU profiles: load them from YAML, look them up by name and match trace devices to them.

Each shipped profile is one file, `profiles/gpus/<id>.yaml`, whose name is its id. Every
file has the same keys:

    schema                  "energaizer.gpu/1"
    id                      lowercase letters and digits joined by hyphens, e.g. a100-sxm4-80gb
    name, aliases           aliases are the names NVML and CUDA report for the board
    vendor                  "nvidia"
    architecture            pascal, volta, turing, ampere, ada, hopper or blackwell
    compute_capability      "major.minor" as a string, e.g. "8.0"
    sms                     number of streaming multiprocessors
    base_clock_mhz          base SM clock
    boost_clock_mhz         maximum SM clock
    memory_gb               memory size in decimal GB, as marketed
    memory_type             e.g. HBM3 or GDDR6
    memory_bandwidth_gb_s   peak DRAM bandwidth in GB/s
    l2_cache_mb, smem_per_sm_kb   L2 size and maximum shared memory per SM
    peak_tflops             dense peak rates in TFLOPS (int8_tensor in TOPS), null where the GPU
                            lacks the unit: fp64, fp32, fp16 and bf16 on CUDA cores, and
                            tf32_tensor, fp16_tensor, bf16_tensor, fp8_tensor, int8_tensor
    power_limit_w           default board power limit
    idle_power_w            draw with no work at the default maximum clock
    nvlink_gb_s             total bidirectional NVLink bandwidth, null without NVLink
    pcie_gb_s               bidirectional PCIe x16 bandwidth
    sources                 for each figure, the document it comes from or "estimate: <how it
                            was derived>". Nested figures use keys like peak_tflops.fp16_tensor.

Only `yaml.safe_load` reads the files.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import energaizer
from energaizer.errors import ProfileError

SCHEMA = "energaizer.gpu/1"
NVIDIA_ARCHITECTURES = ("pascal", "volta", "turing", "ampere", "ada", "hopper", "blackwell")
PEAK_TFLOPS_KEYS = (
    "fp64",
    "fp32",
    "fp16",
    "bf16",
    "tf32_tensor",
    "fp16_tensor",
    "bf16_tensor",
    "fp8_tensor",
    "int8_tensor",
)
# The loader rejects a null for these rates, so every fallback chain below ends in a value.
REQUIRED_PEAK_TFLOPS = ("fp64", "fp32")
DTYPES = ("fp32", "tf32", "fp16", "bf16", "fp8", "int8", "fp64")
FILE_FIELDS = (
    "schema",
    "id",
    "name",
    "aliases",
    "vendor",
    "architecture",
    "compute_capability",
    "sms",
    "base_clock_mhz",
    "boost_clock_mhz",
    "memory_gb",
    "memory_type",
    "memory_bandwidth_gb_s",
    "l2_cache_mb",
    "smem_per_sm_kb",
    "peak_tflops",
    "power_limit_w",
    "idle_power_w",
    "nvlink_gb_s",
    "pcie_gb_s",
    "sources",
)
# Numeric fields that must be present and positive. nvlink_gb_s may also be null.
POSITIVE_FIELDS = (
    "base_clock_mhz",
    "boost_clock_mhz",
    "memory_gb",
    "memory_bandwidth_gb_s",
    "l2_cache_mb",
    "smem_per_sm_kb",
    "power_limit_w",
    "idle_power_w",
    "pcie_gb_s",
)

BYTES_PER_GIB = 1024**3
_ID_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_COMPUTE_CAPABILITY_PATTERN = re.compile(r"(\d+)\.(\d+)")
_PROFILES_HINT = "Run `energaizer profiles` to list them all."

# Peak-rate fields tried in order for each dtype. The first non-null one is used.
_TENSOR_CORE_RATES = {
    "fp64": ("fp64",),
    "fp32": ("fp32",),
    "tf32": ("tf32_tensor", "fp32"),
    "fp16": ("fp16_tensor", "fp16", "fp32"),
    "bf16": ("bf16_tensor", "bf16", "fp32"),
    "fp8": ("fp8_tensor", "fp16_tensor", "fp16", "fp32"),
    "int8": ("int8_tensor", "fp32"),
}
_CUDA_CORE_RATES = {
    "fp64": ("fp64",),
    "fp32": ("fp32",),
    "tf32": ("fp32",),
    "fp16": ("fp16", "fp32"),
    "bf16": ("bf16", "fp32"),
    "fp8": ("fp16", "fp32"),
    "int8": ("fp32",),
}


@dataclass(frozen=True)
class GpuProfile:
    """Specification of one GPU board, read from a profile file or derived from a trace."""

    id: str
    name: str
    aliases: tuple[str, ...]
    vendor: str
    architecture: str
    compute_capability: tuple[int, int]
    sms: int
    base_clock_mhz: float
    boost_clock_mhz: float
    memory_gb: float
    memory_type: str
    memory_bandwidth_gb_s: float
    l2_cache_mb: float
    smem_per_sm_kb: float
    peak_tflops: dict[str, float | None]
    power_limit_w: float
    idle_power_w: float
    nvlink_gb_s: float | None
    pcie_gb_s: float
    sources: dict[str, str] = field(default_factory=dict)
    derived: bool = False
    path: str | None = None

    def peak_flops(self, dtype: str, tensor_cores: bool = True) -> float:
        """Return the dense peak rate in FLOP/s (OP/s for int8) for `dtype`.

        With tensor_cores=False, or where the GPU has no tensor-core rate for the dtype,
        the CUDA-core rate is used. A dtype the GPU lacks falls back: fp8 to the fp16 rate,
        and tf32, bf16 and int8 to the fp32 CUDA-core rate.
        """
        rates = _TENSOR_CORE_RATES if tensor_cores else _CUDA_CORE_RATES
        if dtype not in rates:
            raise ValueError(f"Unknown dtype {dtype!r}. Expected one of {', '.join(DTYPES)}.")
        for key in rates[dtype]:
            tflops = self.peak_tflops.get(key)
            if tflops is not None:
                return tflops * 1e12
        raise ProfileError(
            f"GPU profile {self.id} has no peak rate for {dtype}. "
            f"Set one of these peak_tflops fields: {', '.join(rates[dtype])}."
        )

    @property
    def memory_bandwidth_b_s(self) -> float:
        """Peak DRAM bandwidth in bytes per second."""
        return self.memory_bandwidth_gb_s * 1e9

    def to_dict(self) -> dict[str, Any]:
        """Return the profile in the file layout, so that its YAML dump loads back.

        `derived` and `path` are not part of the file format and are left out.
        """
        data: dict[str, Any] = {"schema": SCHEMA}
        for name in FILE_FIELDS[1:]:
            data[name] = getattr(self, name)
        data["aliases"] = list(self.aliases)
        data["compute_capability"] = "{}.{}".format(*self.compute_capability)
        data["peak_tflops"] = dict(self.peak_tflops)
        data["sources"] = dict(self.sources)
        return data


# ---------------------------------------------------------------- loading


def profiles_dir() -> Path:
    """Return the folder that contains `gpus/`: the installed wheel's, else the repository's."""
    packaged = Path(energaizer.__file__).parent / "_profiles"
    if packaged.is_dir():
        return packaged
    return Path(energaizer.__file__).parent.parent / "profiles"


def list_profiles() -> list[GpuProfile]:
    """Return every shipped GPU profile, sorted by id. The files are read once per process."""
    profiles, _ = _catalog()
    return list(profiles)


def load_profile(id_or_path: str) -> GpuProfile:
    """Return the profile for a shipped id, a GPU name or alias, or a path to a YAML file.

    Names and aliases match case-insensitively and ignore spaces, hyphens, underscores and
    a leading "NVIDIA", "Tesla" or "GeForce". Raises ProfileError for an unknown id or a
    bad file.
    """
    query = id_or_path.strip()
    if query.endswith((".yaml", ".yml")) or "/" in query or "\\" in query:
        path = Path(query).expanduser()
        if not path.is_file():
            raise ProfileError(f"GPU profile file not found: {path}")
        return _read_profile_file(path)
    profiles, index = _catalog()
    by_id = {profile.id: profile for profile in profiles}
    if query in by_id:
        return by_id[query]
    key = _name_key(query)
    if key in index:
        return index[key]
    raise ProfileError(_unknown_profile_message(query, sorted(by_id)))


def _unknown_profile_message(query: str, ids: list[str]) -> str:
    lowered = query.lower()
    close = [profile_id for profile_id in ids if profile_id.startswith(lowered)]
    if not close:
        close = difflib.get_close_matches(lowered, ids, n=5, cutoff=0.5)
    if not close:
        return f"Unknown GPU profile {query!r}. {_PROFILES_HINT}"
    return f"Unknown GPU profile {query!r}. Closest ids: {', '.join(close)}. {_PROFILES_HINT}"


@functools.cache
def _catalog() -> tuple[tuple[GpuProfile, ...], dict[str, GpuProfile]]:
    """Read every shipped profile and index it by normalised id, name and aliases."""
    folder = profiles_dir() / "gpus"
    profiles = []
    for path in sorted(folder.glob("*.yaml")):
        profile = _read_profile_file(path)
        if profile.id != path.stem:
            raise ProfileError(
                f"GPU profile {path} has id {profile.id!r}. "
                f"Rename the file to {profile.id}.yaml."
            )
        profiles.append(profile)
    if not profiles:
        raise ProfileError(f"No GPU profiles found in {folder}. Reinstall energaizer.")
    return tuple(profiles), _build_name_index(profiles)


def _build_name_index(profiles: list[GpuProfile]) -> dict[str, GpuProfile]:
    index: dict[str, GpuProfile] = {}
    for profile in profiles:
        for name in (profile.id, profile.name, *profile.aliases):
            key = _name_key(name)
            other = index.get(key)
            if other is not None and other.id != profile.id:
                raise ProfileError(
                    f"GPU profiles {other.id} and {profile.id} both use the name {name!r}. "
                    f"Remove it from one of {other.path} and {profile.path}."
                )
            if key:
                index[key] = profile
    return index


def _read_profile_file(path: Path) -> GpuProfile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ProfileError(f"Failed to read GPU profile {path}: {error.strerror}.") from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ProfileError(f"GPU profile {path} is not valid YAML: {error}") from error
    return _profile_from_mapping(data, str(path))


# ---------------------------------------------------------------- validation


def _invalid(path: str, name: str, problem: str) -> ProfileError:
    return ProfileError(f"GPU profile {path}: field {name!r} {problem}")


def _profile_from_mapping(data: Any, path: str) -> GpuProfile:
    """Validate one parsed profile file and build its GpuProfile."""
    if not isinstance(data, dict):
        raise ProfileError(
            f"GPU profile {path} is invalid: expected a mapping of fields at the top level"
        )
    _check_schema(data, path)
    unknown = sorted(set(map(str, data)) - set(FILE_FIELDS))
    if unknown:
        raise ProfileError(f"GPU profile {path} has unknown fields: {', '.join(unknown)}")
    missing = [name for name in FILE_FIELDS if name not in data]
    if missing:
        raise _invalid(path, missing[0], f"is missing (all missing: {', '.join(missing)})")
    numbers = {name: _positive_number(data[name], name, path) for name in POSITIVE_FIELDS}
    _check_ranges(numbers, path)
    vendor = _text(data["vendor"], "vendor", path)
    return GpuProfile(
        id=_profile_id(data["id"], path),
        name=_text(data["name"], "name", path),
        aliases=_aliases(data["aliases"], path),
        vendor=vendor,
        architecture=_architecture(data["architecture"], vendor, path),
        compute_capability=_compute_capability(data["compute_capability"], path),
        sms=_positive_integer(data["sms"], "sms", path),
        memory_type=_text(data["memory_type"], "memory_type", path),
        peak_tflops=_peak_tflops(data["peak_tflops"], path),
        nvlink_gb_s=_optional_positive_number(data["nvlink_gb_s"], "nvlink_gb_s", path),
        sources=_sources(data["sources"], path),
        path=path,
        **numbers,
    )


def _check_schema(data: dict, path: str) -> None:
    schema = data.get("schema")
    if schema is None:
        raise _invalid(
            path, "schema", f"is missing; this version of energaizer reads {SCHEMA!r}"
        )
    if schema != SCHEMA:
        raise ProfileError(
            f"GPU profile {path} has schema {schema!r}, but this version of energaizer reads "
            f"only {SCHEMA!r}. Rewrite the file in the {SCHEMA} format or use a matching "
            "energaizer."
        )


def _check_ranges(numbers: dict[str, float], path: str) -> None:
    if numbers["boost_clock_mhz"] < numbers["base_clock_mhz"]:
        raise _invalid(path, "boost_clock_mhz", "is invalid: it is below base_clock_mhz")
    if numbers["idle_power_w"] >= numbers["power_limit_w"]:
        raise _invalid(path, "idle_power_w", "is invalid: it is not below power_limit_w")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive_number(value: Any, name: str, path: str) -> float:
    if not _is_number(value) or not value > 0:
        raise _invalid(path, name, f"is invalid: expected a positive number, got {value!r}")
    return float(value)


def _optional_positive_number(value: Any, name: str, path: str) -> float | None:
    if value is None:
        return None
    return _positive_number(value, name, path)


def _positive_integer(value: Any, name: str, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise _invalid(path, name, f"is invalid: expected a positive integer, got {value!r}")
    return value


def _text(value: Any, name: str, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _invalid(path, name, f"is invalid: expected a non-empty string, got {value!r}")
    return value.strip()


def _profile_id(value: Any, path: str) -> str:
    profile_id = _text(value, "id", path)
    if not _ID_PATTERN.fullmatch(profile_id):
        raise _invalid(
            path,
            "id",
            f"is invalid: {profile_id!r} must be lowercase letters and digits joined by "
            "hyphens",
        )
    return profile_id


def _aliases(value: Any, path: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _invalid(path, "aliases", f"is invalid: expected a list of names, got {value!r}")
    return tuple(_text(alias, "aliases", path) for alias in value)


def _architecture(value: Any, vendor: str, path: str) -> str:
    architecture = _text(value, "architecture", path)
    if vendor == "nvidia" and architecture not in NVIDIA_ARCHITECTURES:
        expected = ", ".join(NVIDIA_ARCHITECTURES)
        raise _invalid(
            path, "architecture", f"is invalid: {architecture!r} is not one of {expected}"
        )
    return architecture


def _compute_capability(value: Any, path: str) -> tuple[int, int]:
    text = str(value) if _is_number(value) else value
    match = _COMPUTE_CAPABILITY_PATTERN.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise _invalid(
            path, "compute_capability", f'is invalid: expected "major.minor", got {value!r}'
        )
    return int(match.group(1)), int(match.group(2))


def _peak_tflops(value: Any, path: str) -> dict[str, float | None]:
    if not isinstance(value, dict):
        raise _invalid(path, "peak_tflops", "is invalid: expected a mapping of dtype to TFLOPS")
    unknown = sorted(set(map(str, value)) - set(PEAK_TFLOPS_KEYS))
    if unknown:
        raise _invalid(path, "peak_tflops", f"has unknown keys: {', '.join(unknown)}")
    rates: dict[str, float | None] = {}
    for key in PEAK_TFLOPS_KEYS:
        name = f"peak_tflops.{key}"
        if key not in value:
            raise _invalid(path, name, "is missing (write null where the GPU lacks the unit)")
        if key in REQUIRED_PEAK_TFLOPS:
            rates[key] = _positive_number(value[key], name, path)
        else:
            rates[key] = _optional_positive_number(value[key], name, path)
    return rates


def _sources(value: Any, path: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _invalid(
            path, "sources", "is invalid: expected a mapping of field name to source"
        )
    return {str(key): _text(text, f"sources.{key}", path) for key, text in value.items()}


# ---------------------------------------------------------------- names


_VENDOR_PREFIXES = ("nvidia", "tesla", "geforce")
_NON_NVIDIA_NAME = re.compile(r"\b(?:amd|radeon|instinct|intel)\b|\bgfx\d", re.IGNORECASE)


def _name_tokens(name: str) -> list[str]:
    """Split a GPU name into lowercase words and drop leading vendor and brand words.

    Only whole leading words go, so "NVIDIA GeForce RTX 3090" becomes ["rtx", "3090"] while
    "Quadro RTX 6000" keeps "quadro".
    """
    tokens = [token for token in re.split(r"[\s\-_]+", name.lower()) if token]
    while tokens and tokens[0] in _VENDOR_PREFIXES:
        tokens.pop(0)
    return tokens


def _name_key(name: str) -> str:
    return "".join(_name_tokens(name))


def _family_token(tokens: list[str]) -> str | None:
    """Return the first word that contains a digit, the model number: a100, 2080, h100."""
    return next((token for token in tokens if any(char.isdigit() for char in token)), None)


def is_nvidia_device(props: dict) -> bool:
    """Return False when the deviceProperties name contains an AMD or Intel marker.

    A name without such a marker, an empty one included, counts as an NVIDIA GPU because
    the entry carries no other vendor information.
    """
    name = str(props.get("name") or "")
    if "nvidia" in name.lower():
        return True
    return _NON_NVIDIA_NAME.search(name) is None
