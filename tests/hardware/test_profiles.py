"""Tests of the shipped GPU profiles, their loader and the trace device matcher."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from energaizer.errors import ProfileError
from energaizer.hardware.derived import profile_from_device_properties
from energaizer.hardware.matching import match_device
from energaizer.hardware.profiles import (
    PEAK_TFLOPS_KEYS,
    GpuProfile,
    is_nvidia_device,
    list_profiles,
    load_profile,
    profiles_dir,
)

REQUIRED_IDS = (
    "v100-pcie-16gb",
    "v100-sxm2-16gb",
    "v100-sxm2-32gb",
    "t4",
    "a10",
    "a10g",
    "a100-pcie-40gb",
    "a100-pcie-80gb",
    "a100-sxm4-40gb",
    "a100-sxm4-80gb",
    "l4",
    "l40s",
    "rtx-2080-ti",
    "rtx-3090",
    "rtx-4090",
    "h100-pcie-80gb",
    "h100-sxm5-80gb",
    "h100-nvl-94gb",
    "h200-sxm-141gb",
    "b200",
    "a40",
    "rtx-6000",
    "p100-pcie-16gb",
)
NUMERIC_FIELDS = (
    "sms",
    "base_clock_mhz",
    "boost_clock_mhz",
    "memory_gb",
    "memory_bandwidth_gb_s",
    "l2_cache_mb",
    "smem_per_sm_kb",
    "power_limit_w",
    "idle_power_w",
    "nvlink_gb_s",
    "pcie_gb_s",
)
# FP32 lanes per SM by compute capability major.minor, from the NVIDIA architecture whitepapers.
FP32_LANES_PER_SM = {
    (6, 0): 64,
    (7, 0): 64,
    (7, 5): 64,
    (8, 0): 64,
    (8, 6): 128,
    (8, 9): 128,
    (9, 0): 128,
    (10, 0): 128,
}
# Names that NVML and CUDA report in real traces, with the profile each belongs to.
TRACE_NAMES = {
    "Tesla V100-SXM2-16GB": "v100-sxm2-16gb",
    "Tesla V100-SXM2-32GB": "v100-sxm2-32gb",
    "Tesla V100-DGXS-32GB": "v100-sxm2-32gb",
    "Tesla V100-PCIE-16GB": "v100-pcie-16gb",
    "NVIDIA A100-PG509-200": "a100-sxm4-40gb",
    "NVIDIA GeForce RTX 2080 Ti": "rtx-2080-ti",
    "NVIDIA H100 80GB HBM3": "h100-sxm5-80gb",
    "NVIDIA H100 PCIe": "h100-pcie-80gb",
    "NVIDIA H100 NVL": "h100-nvl-94gb",
    "NVIDIA H200": "h200-sxm-141gb",
    "NVIDIA B200": "b200",
    "NVIDIA A10": "a10",
    "NVIDIA A10G": "a10g",
    "Tesla T4": "t4",
    "NVIDIA L4": "l4",
    "NVIDIA L40S": "l40s",
    "NVIDIA A100-SXM4-80GB": "a100-sxm4-80gb",
    "NVIDIA A100-SXM4-40GB": "a100-sxm4-40gb",
    "NVIDIA A100 80GB PCIe": "a100-pcie-80gb",
    "NVIDIA A100-PCIE-40GB": "a100-pcie-40gb",
    "NVIDIA GeForce RTX 3090": "rtx-3090",
    "NVIDIA GeForce RTX 4090": "rtx-4090",
    "NVIDIA A40": "a40",
    "Quadro RTX 6000": "rtx-6000",
    "Tesla P100-PCIE-16GB": "p100-pcie-16gb",
}
H100_95_GIB = {
    "name": "NVIDIA H100",
    "totalGlobalMem": 102085492736,
    "computeMajor": 9,
    "computeMinor": 0,
    "numSms": 132,
}
UNKNOWN_BLACKWELL = {
    "name": "NVIDIA RTX PRO 9999",
    "totalGlobalMem": 102_000_000_000,
    "computeMajor": 12,
    "computeMinor": 0,
    "numSms": 100,
}

SHIPPED_FILES = sorted((profiles_dir() / "gpus").glob("*.yaml"))
SHIPPED_IDS = [path.stem for path in SHIPPED_FILES]


def write_profile(folder: Path, data: dict) -> Path:
    path = folder / f"{data.get('id', 'broken')}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def shipped_data(profile_id: str) -> dict:
    return yaml.safe_load((profiles_dir() / "gpus" / f"{profile_id}.yaml").read_text())


# ---------------------------------------------------------------- shipped files


def test_required_profiles_are_shipped():
    shipped = {profile.id for profile in list_profiles()}
    for profile_id in REQUIRED_IDS:
        assert profile_id in shipped, f"missing profile {profile_id}"


def test_every_file_loads_as_listed():
    assert [profile.id for profile in list_profiles()] == SHIPPED_IDS


@pytest.mark.parametrize("profile_id", SHIPPED_IDS)
def test_profile_id_format(profile_id):
    profile = load_profile(profile_id)
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", profile.id)
    assert profile.derived is False
    assert profile.path is not None
    assert Path(profile.path).stem == profile.id


def test_profile_ids_unique():
    ids = [profile.id for profile in list_profiles()]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("profile_id", SHIPPED_IDS)
def test_profile_has_same_keys_as_a100(profile_id):
    assert list(shipped_data(profile_id)) == list(shipped_data("a100-pcie-40gb"))
    assert list(shipped_data(profile_id)["peak_tflops"]) == list(PEAK_TFLOPS_KEYS)


@pytest.mark.parametrize("profile_id", SHIPPED_IDS)
def test_profile_sources_cover_figures(profile_id):
    profile = load_profile(profile_id)
    figures = list(NUMERIC_FIELDS) + [f"peak_tflops.{key}" for key in PEAK_TFLOPS_KEYS]
    for figure in figures:
        assert figure in profile.sources, f"{profile_id}: no source for {figure}"
        assert profile.sources[figure].strip(), f"{profile_id}: empty source for {figure}"


@pytest.mark.parametrize("profile_id", SHIPPED_IDS)
def test_profile_sources_name_document_or_estimate(profile_id):
    profile = load_profile(profile_id)
    for figure, source in profile.sources.items():
        plain = source.startswith(("estimate", "null:")) or re.search(r"\b20\d\d\b", source)
        assert plain, f"{profile_id}: source of {figure} names no dated document: {source}"


def test_aliases_unique_across_profiles():
    owner: dict[str, str] = {}
    for profile in list_profiles():
        for alias in profile.aliases:
            key = alias.lower()
            assert owner.get(key, profile.id) == profile.id, f"{alias} in {owner.get(key)}"
            owner[key] = profile.id


@pytest.mark.parametrize("profile_id", SHIPPED_IDS)
def test_aliases_load_their_profile(profile_id):
    profile = load_profile(profile_id)
    for alias in profile.aliases:
        assert load_profile(alias).id == profile_id, alias


@pytest.mark.parametrize("profile_id", SHIPPED_IDS)
def test_profile_sanity_ranges(profile_id):
    profile = load_profile(profile_id)
    assert 20 <= profile.sms <= 200
    assert profile.boost_clock_mhz >= profile.base_clock_mhz
    assert 500 <= profile.boost_clock_mhz <= 3000
    assert 250 <= profile.memory_bandwidth_gb_s <= 10_000
    assert 8 <= profile.memory_gb <= 200
    assert 50 <= profile.power_limit_w <= 1200
    assert 0 < profile.idle_power_w < profile.power_limit_w
    assert profile.pcie_gb_s in (32, 64, 128)
    assert profile.vendor == "nvidia"


@pytest.mark.parametrize("profile_id", SHIPPED_IDS)
def test_fp32_rate_matches_clock(profile_id):
    profile = load_profile(profile_id)
    lanes = FP32_LANES_PER_SM[profile.compute_capability]
    computed_tflops = profile.sms * lanes * 2 * profile.boost_clock_mhz / 1e6
    # The B200 FP32 rate is an estimate (twice the datasheet FP64 rate) that comes out 7.5%
    # above SMs x lanes x 2 x clock, so it gets a wider tolerance.
    tolerance = 0.1 if profile_id == "b200" else 0.02
    assert profile.peak_tflops["fp32"] == pytest.approx(computed_tflops, rel=tolerance)


@pytest.mark.parametrize("profile_id", SHIPPED_IDS)
def test_tensor_rates_ordered(profile_id):
    rates = load_profile(profile_id).peak_tflops
    if rates["fp16_tensor"] is not None:
        assert rates["fp16_tensor"] > rates["fp32"]
    if rates["tf32_tensor"] is not None:
        assert rates["tf32_tensor"] <= rates["fp16_tensor"]
    if rates["fp8_tensor"] is not None:
        assert rates["fp8_tensor"] >= rates["fp16_tensor"]
    if rates["bf16_tensor"] is not None:
        assert rates["bf16_tensor"] == rates["fp16_tensor"]


def test_measured_idle_power_used():
    assert load_profile("a100-pcie-40gb").idle_power_w == pytest.approx(67.3)
    assert load_profile("a100-sxm4-80gb").idle_power_w == pytest.approx(82.3)
    assert load_profile("h100-sxm5-80gb").idle_power_w == pytest.approx(120.1)


# ---------------------------------------------------------------- GpuProfile


def test_peak_flops_in_flop_per_second():
    a100 = load_profile("a100-sxm4-80gb")
    assert a100.peak_flops("bf16") == pytest.approx(312e12, rel=0.01)
    assert a100.peak_flops("tf32") == pytest.approx(156e12, rel=0.01)
    assert a100.peak_flops("int8") == pytest.approx(624e12, rel=0.01)
    assert a100.peak_flops("fp64") == pytest.approx(9.7e12, rel=0.01)


def test_peak_flops_without_tensor_cores():
    a100 = load_profile("a100-pcie-40gb")
    assert a100.peak_flops("fp16", tensor_cores=False) == pytest.approx(78e12)
    assert a100.peak_flops("bf16", tensor_cores=False) == pytest.approx(39e12)
    assert a100.peak_flops("tf32", tensor_cores=False) == pytest.approx(19.5e12)
    assert a100.peak_flops("fp32", tensor_cores=False) == pytest.approx(19.5e12)


def test_peak_flops_fallbacks():
    v100 = load_profile("v100-sxm2-32gb")
    assert v100.peak_flops("bf16") == pytest.approx(15.7e12)
    assert v100.peak_flops("tf32") == pytest.approx(15.7e12)
    assert v100.peak_flops("fp8") == pytest.approx(125e12)
    assert v100.peak_flops("int8") == pytest.approx(15.7e12)
    p100 = load_profile("p100-pcie-16gb")
    assert p100.peak_flops("fp16") == pytest.approx(18.7e12)
    assert load_profile("a100-pcie-40gb").peak_flops("fp8") == pytest.approx(312e12)


def test_peak_flops_unknown_dtype():
    with pytest.raises(ValueError, match="fp4"):
        load_profile("h100-sxm5-80gb").peak_flops("fp4")


def test_memory_bandwidth_in_bytes_per_second():
    assert load_profile("a100-pcie-40gb").memory_bandwidth_b_s == pytest.approx(1.555e12)


def test_to_dict_round_trip(tmp_path):
    profile = load_profile("l40s")
    path = write_profile(tmp_path, profile.to_dict())
    loaded = load_profile(str(path))
    assert loaded.to_dict() == profile.to_dict()
    assert loaded.path == str(path)


# ---------------------------------------------------------------- load_profile


def test_load_by_name_case_insensitive():
    assert load_profile("tesla t4").id == "t4"
    assert load_profile("NVIDIA A100-PCIE-40GB").id == "a100-pcie-40gb"
    assert load_profile("nvidia a100 80gb pcie").id == "a100-pcie-80gb"
    assert load_profile("GeForce RTX 4090").id == "rtx-4090"
    assert load_profile("NVIDIA H100 SXM5 80GB").id == "h100-sxm5-80gb"


def test_load_by_path():
    path = profiles_dir() / "gpus" / "a10.yaml"
    assert load_profile(str(path)).id == "a10"


def test_unknown_id_lists_close_ids():
    with pytest.raises(ProfileError) as raised:
        load_profile("a100-pcie")
    message = str(raised.value)
    assert "a100-pcie-40gb" in message
    assert "a100-pcie-80gb" in message
    assert "energaizer profiles" in message


def test_unknown_id_without_close_ids():
    with pytest.raises(ProfileError, match="energaizer profiles"):
        load_profile("zzzz")


def test_missing_file_rejected(tmp_path):
    with pytest.raises(ProfileError, match="not found"):
        load_profile(str(tmp_path / "nothing.yaml"))


def test_wrong_schema_version_rejected(tmp_path):
    data = shipped_data("t4") | {"schema": "energaizer.gpu/2"}
    path = write_profile(tmp_path, data)
    with pytest.raises(ProfileError) as raised:
        load_profile(str(path))
    message = str(raised.value)
    assert "energaizer.gpu/2" in message
    assert "energaizer.gpu/1" in message
    assert str(path) in message


def test_missing_field_rejected(tmp_path):
    data = shipped_data("t4")
    del data["memory_bandwidth_gb_s"]
    path = write_profile(tmp_path, data)
    with pytest.raises(ProfileError) as raised:
        load_profile(str(path))
    assert str(path) in str(raised.value)
    assert "memory_bandwidth_gb_s" in str(raised.value)


def test_invalid_number_rejected(tmp_path):
    data = shipped_data("t4")
    data["peak_tflops"]["fp16_tensor"] = "fast"
    path = write_profile(tmp_path, data)
    with pytest.raises(ProfileError, match="peak_tflops.fp16_tensor"):
        load_profile(str(path))


def test_unknown_field_rejected(tmp_path):
    data = shipped_data("t4") | {"boost_clock": 1590}
    path = write_profile(tmp_path, data)
    with pytest.raises(ProfileError, match="boost_clock"):
        load_profile(str(path))


def test_idle_above_limit_rejected(tmp_path):
    data = shipped_data("t4") | {"idle_power_w": 80}
    path = write_profile(tmp_path, data)
    with pytest.raises(ProfileError, match="idle_power_w"):
        load_profile(str(path))


def test_bad_compute_capability_rejected(tmp_path):
    data = shipped_data("t4") | {"compute_capability": "sm_75"}
    path = write_profile(tmp_path, data)
    with pytest.raises(ProfileError, match="compute_capability"):
        load_profile(str(path))


def test_non_mapping_file_rejected(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ProfileError, match="mapping"):
        load_profile(str(path))


def test_invalid_yaml_rejected(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("id: [unclosed\n")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile(str(path))


# ---------------------------------------------------------------- match_device


@pytest.mark.parametrize(("name", "profile_id"), sorted(TRACE_NAMES.items()))
def test_trace_name_matches_exactly(name, profile_id):
    profile, warnings = match_device({"name": name})
    assert profile.id == profile_id
    assert warnings == []


def test_h100_95_gib_matches_nvl_approximately():
    profile, warnings = match_device(H100_95_GIB)
    assert profile.id == "h100-nvl-94gb"
    assert len(warnings) == 1
    assert "approximately" in warnings[0]
    assert "h100-nvl-94gb" in warnings[0]


def test_h100_80_gib_matches_sxm5():
    props = H100_95_GIB | {"totalGlobalMem": 85_520_809_984}
    profile, warnings = match_device(props)
    assert profile.id == "h100-sxm5-80gb"
    assert len(warnings) == 1


def test_a100_pg509_matches_sxm4_40gb():
    props = {
        "name": "NVIDIA A100-PG509-200",
        "totalGlobalMem": 42297524224,
        "numSms": 108,
        "computeMajor": 8,
        "computeMinor": 0,
    }
    profile, warnings = match_device(props)
    assert profile.id == "a100-sxm4-40gb"
    assert warnings == []


def test_v100_dgxs_matches_sxm2_32gb():
    props = {
        "name": "Tesla V100-DGXS-32GB",
        "totalGlobalMem": 34089730048,
        "numSms": 80,
        "computeMajor": 7,
        "computeMinor": 0,
    }
    profile, warnings = match_device(props)
    assert profile.id == "v100-sxm2-32gb"
    assert warnings == []


def test_rtx_2080_ti_matches():
    props = {
        "name": "NVIDIA GeForce RTX 2080 Ti",
        "totalGlobalMem": 11554586624,
        "computeMajor": 7,
        "computeMinor": 5,
        "numSms": 68,
    }
    profile, warnings = match_device(props)
    assert profile.id == "rtx-2080-ti"
    assert warnings == []


def test_form_factor_word_breaks_tie():
    props = {
        "name": "NVIDIA A100-SXM-80GB-XYZ",
        "totalGlobalMem": 85_031_714_816,
        "numSms": 108,
        "computeMajor": 8,
        "computeMinor": 0,
    }
    profile, warnings = match_device(props)
    assert profile.id == "a100-sxm4-80gb"
    assert "approximately" in warnings[0]


def test_other_sm_count_not_matched():
    props = {
        "name": "NVIDIA GeForce RTX 2080",
        "totalGlobalMem": 8_361_017_344,
        "computeMajor": 7,
        "computeMinor": 5,
        "numSms": 46,
    }
    profile, warnings = match_device(props)
    assert profile.derived is True
    assert "no profile" in warnings[0]


def test_rtx_6000_ada_not_matched_to_turing():
    props = {
        "name": "NVIDIA RTX 6000 Ada Generation",
        "totalGlobalMem": 51_010_977_792,
        "computeMajor": 8,
        "computeMinor": 9,
        "numSms": 142,
    }
    profile, _ = match_device(props)
    assert profile.id != "rtx-6000"
    assert profile.derived is True
    assert profile.architecture == "ada"


def test_unknown_gpu_derived_from_trace():
    profile, warnings = match_device(UNKNOWN_BLACKWELL)
    assert profile.derived is True
    assert profile.path is None
    assert profile.sms == 100
    assert profile.compute_capability == (12, 0)
    assert profile.architecture == "blackwell"
    assert len(warnings) == 1
    assert "NVIDIA RTX PRO 9999" in warnings[0]
    assert "no profile" in warnings[0]
    assert "100 SMs" in warnings[0]
    assert "--gpu" in warnings[0]


def test_derived_rates_follow_sm_count():
    profile = profile_from_device_properties(UNKNOWN_BLACKWELL)
    expected = 100 * 256 * profile.boost_clock_mhz * 1e6
    assert profile.peak_flops("fp32") == pytest.approx(expected)
    assert profile.peak_flops("fp16") > profile.peak_flops("fp32")
    assert profile.memory_gb == pytest.approx(95.0, abs=0.1)


def test_derived_sources_mark_estimates():
    profile = profile_from_device_properties(UNKNOWN_BLACKWELL)
    assert profile.sources["sms"] == "from deviceProperties: numSms"
    assert profile.sources["boost_clock_mhz"].startswith("estimate from deviceProperties")
    assert profile.sources["memory_bandwidth_gb_s"].startswith("estimate from deviceProperties")
    assert profile.sources["power_limit_w"].startswith("estimate from deviceProperties")


def test_derived_profile_reads_shared_memory():
    props = UNKNOWN_BLACKWELL | {"sharedMemPerMultiprocessor": 102400}
    profile = profile_from_device_properties(props)
    assert profile.smem_per_sm_kb == 100
    assert (
        profile.sources["smem_per_sm_kb"] == "from deviceProperties: sharedMemPerMultiprocessor"
    )


def test_derived_uses_nearest_lower_capability():
    props = UNKNOWN_BLACKWELL | {"computeMajor": 10, "computeMinor": 3}
    profile = profile_from_device_properties(props)
    assert profile.architecture == "blackwell"
    assert "10.3 is not in the table" in profile.sources["boost_clock_mhz"]


def test_derived_profile_round_trip(tmp_path):
    profile = profile_from_device_properties(UNKNOWN_BLACKWELL)
    path = write_profile(tmp_path, profile.to_dict())
    loaded = load_profile(str(path))
    assert isinstance(loaded, GpuProfile)
    assert loaded.to_dict() == profile.to_dict()
    assert loaded.derived is False


def test_derived_needs_sm_count():
    props = {key: value for key, value in UNKNOWN_BLACKWELL.items() if key != "numSms"}
    with pytest.raises(ProfileError, match="numSms"):
        profile_from_device_properties(props)


@pytest.mark.parametrize("name", ["AMD Radeon Graphics", "AMD Instinct MI250X"])
def test_amd_device_rejected(name):
    props = {"name": name, "computeMajor": 9, "computeMinor": 0, "numSms": 110}
    assert is_nvidia_device(props) is False
    with pytest.raises(ProfileError) as raised:
        match_device(props)
    assert "not an NVIDIA GPU" in str(raised.value)
    assert "--gpu" in str(raised.value)


def test_nvidia_device_recognised():
    assert is_nvidia_device({"name": "NVIDIA H100 NVL"}) is True
    assert is_nvidia_device({"name": "Tesla T4"}) is True
    assert is_nvidia_device({"name": "Quadro RTX 6000"}) is True
