"""Model presets: lookup by name, alias and path, and that each one builds as published."""

from __future__ import annotations

import json

import pytest

from energaizer.errors import InputError, ProfileError
from energaizer.workload.presets import (
    METADATA_KEY,
    list_presets,
    load_model_config,
    preset_metadata,
)

REQUIRED_PRESETS = {
    "gpt2", "bert-base", "bert-large", "opt-1.3b", "qwen2-1.5b", "qwen3-8b", "qwen3-14b",
    "qwen3-32b", "llama-3.1-8b", "llama-3.1-70b", "mistral-7b", "vit-large",
    "mobilevit-small", "resnet-50", "resnet-101",
}


def test_required_presets_ship():
    assert REQUIRED_PRESETS <= set(list_presets())


@pytest.mark.parametrize("name", list_presets())
def test_preset_loads(name):
    config, display = load_model_config(name)
    metadata = config[METADATA_KEY]
    assert display == name
    assert isinstance(config["model_type"], str)
    assert config["architectures"]
    assert metadata["name"] == name
    assert "config.json" in metadata["source"]
    assert metadata["parameters"] > 1_000_000


@pytest.mark.parametrize("name", list_presets())
def test_preset_parameter_count(name):
    pytest.importorskip("transformers")
    from energaizer.workload import capture

    request = capture._make_request(name, "bf16", "forward", "default")
    model = capture._runner_for(request).model
    built = sum(parameter.numel() for parameter in model.parameters())
    assert built == pytest.approx(preset_metadata(name)["parameters"], rel=0.005)


@pytest.mark.parametrize("query, expected", [
    ("GPT2", "gpt2"),
    ("meta-llama/Llama-3.1-8B", "llama-3.1-8b"),
    ("meta-llama/Meta-Llama-3.1-70B", "llama-3.1-70b"),
    ("Qwen/Qwen3-8B", "qwen3-8b"),
    ("google-bert/bert-base-uncased", "bert-base"),
    ("someorg/resnet-50", "resnet-50"),
])
def test_alias_resolves(query, expected):
    assert load_model_config(query)[1] == expected


def test_unknown_name_lists_close_presets():
    with pytest.raises(ProfileError) as raised:
        load_model_config("llama-8b")
    message = str(raised.value)
    assert "llama-3.1-8b" in message
    assert "Available presets" in message


def test_config_file_path(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    config = {"model_type": "gpt2", "n_layer": 2}
    (folder / "config.json").write_text(json.dumps(config))
    assert load_model_config(str(folder / "config.json")) == (config, "my-model")
    assert load_model_config(folder) == (config, "my-model")


def test_config_without_model_type(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"hidden_size": 64}))
    with pytest.raises(InputError, match="model_type"):
        load_model_config(str(path))


def test_missing_config_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_model_config(str(tmp_path / "absent.json"))


def test_config_file_not_json(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{model_type: llama}")
    with pytest.raises(InputError, match="not valid JSON"):
        load_model_config(str(path))
