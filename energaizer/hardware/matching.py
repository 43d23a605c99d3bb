"""Match the GPU a trace names in its deviceProperties to a shipped profile."""

from __future__ import annotations

from energaizer.errors import ProfileError
from energaizer.hardware.derived import profile_from_device_properties
from energaizer.hardware.device_properties import (
    device_compute_capability,
    device_memory_gib,
    device_sm_count,
)
from energaizer.hardware.profiles import (
    GpuProfile,
    _catalog,
    _family_token,
    _name_key,
    _name_tokens,
    is_nvidia_device,
    list_profiles,
)

# An approximate match must be within these relative distances of the trace's values.
SM_COUNT_TOLERANCE = 0.10
MEMORY_SIZE_TOLERANCE = 0.15


def match_device(props: dict) -> tuple[GpuProfile, list[str]]:
    """Return the profile for a Kineto deviceProperties entry and warnings for the user.

    Tries an exact name or alias match first (no warnings). Then it tries a profile of the
    same model number and compute capability whose SM count and memory size are close,
    with a warning that the match is approximate. Otherwise it derives a profile from the
    properties, with a warning that names the assumptions. Raises ProfileError for AMD or
    Intel GPUs, and when the properties are too incomplete to derive a profile.
    """
    name = str(props.get("name") or "").strip()
    if not is_nvidia_device(props):
        raise ProfileError(
            f"GPU {name!r} in the trace is not an NVIDIA GPU, and energaizer ships profiles "
            "only for NVIDIA GPUs. Pass --gpu with a profile YAML file for that GPU."
        )
    _, index = _catalog()
    key = _name_key(name)
    if key in index:
        return index[key], []
    profile = _match_family(props)
    if profile is not None:
        return profile, [_approximate_match_warning(name, profile, props)]
    derived = profile_from_device_properties(props)
    return derived, [_derived_profile_warning(derived, props)]


def _match_family(props: dict) -> GpuProfile | None:
    """Return the closest profile with the same model number, or None when none is close."""
    tokens = _name_tokens(str(props.get("name") or ""))
    family = _family_token(tokens)
    if family is None:
        return None
    capability = device_compute_capability(props)
    sm_count = device_sm_count(props)
    memory_gib = device_memory_gib(props)
    candidates = []
    for profile in list_profiles():
        if _family_token(profile.id.split("-")) != family:
            continue
        if capability is not None and profile.compute_capability != capability:
            continue
        if (
            sm_count is not None
            and abs(profile.sms - sm_count) > SM_COUNT_TOLERANCE * profile.sms
        ):
            continue
        if (
            memory_gib is not None
            and abs(profile.memory_gb - memory_gib) > MEMORY_SIZE_TOLERANCE * profile.memory_gb
        ):
            continue
        candidates.append(profile)
    if not candidates:
        return None

    def distance(profile: GpuProfile) -> tuple:
        sm_distance = abs(profile.sms - sm_count) if sm_count is not None else 0
        memory_distance = (
            abs(profile.memory_gb - memory_gib) / profile.memory_gb if memory_gib else 0.0
        )
        return sm_distance, memory_distance, -_shared_word_count(tokens, profile), profile.id

    return min(candidates, key=distance)


def _shared_word_count(tokens: list[str], profile: GpuProfile) -> int:
    """Count name words that are a prefix of an id word or the reverse ("sxm" and "sxm4")."""
    id_words = profile.id.split("-")
    return sum(
        any(word.startswith(token) or token.startswith(word) for word in id_words)
        for token in tokens
    )


def _describe_device(props: dict) -> str:
    parts = []
    capability = device_compute_capability(props)
    if capability is not None:
        parts.append("compute capability {}.{}".format(*capability))
    if device_sm_count(props) is not None:
        parts.append(f"{props['numSms']} SMs")
    memory_gib = device_memory_gib(props)
    if memory_gib is not None:
        parts.append(f"{memory_gib:.1f} GiB of memory")
    if len(parts) > 1:
        return ", ".join(parts[:-1]) + " and " + parts[-1]
    return parts[0] if parts else "its name alone"


def _approximate_match_warning(name: str, profile: GpuProfile, props: dict) -> str:
    return (
        f"GPU {name!r} has no exact profile, so it was matched approximately to {profile.id} "
        f"({profile.name}) by {_describe_device(props)}. "
        "Pass --gpu to use a different profile."
    )


def _derived_profile_warning(profile: GpuProfile, props: dict) -> str:
    return (
        f"GPU {profile.name!r} has no profile, so its figures were derived from the trace's "
        f"{_describe_device(props)}. "
        f"The boost clock ({profile.boost_clock_mhz:.0f} MHz), per-SM FLOP rates, memory "
        f"bandwidth ({profile.memory_bandwidth_gb_s:.0f} GB/s) and power "
        f"({profile.power_limit_w:.0f} W limit, {profile.idle_power_w:.0f} W idle) are typical "
        f"values for {profile.architecture.capitalize()} GPUs and can be far off. "
        "Pass --gpu with a profile YAML file for this GPU to get accurate figures."
    )
