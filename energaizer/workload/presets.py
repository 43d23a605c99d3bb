"""Model presets: Hugging Face configs shipped with energaizer, looked up by name.

Each preset is `profiles/models/<name>.json`: the fields of the model's published
config.json that building it needs (no weights), plus a top-level "_energaizer" key
with the preset's name, family, source, approximate parameter count and aliases. The
capture strips "_energaizer" before it builds the model.
"""

from __future__ import annotations

import difflib
import functools
import json
from pathlib import Path
from typing import Any

from energaizer.errors import InputError, ProfileError
from energaizer.hardware.profiles import profiles_dir

METADATA_KEY = "_energaizer"


def models_dir() -> Path:
    """Return the folder of the model presets."""
    return profiles_dir() / "models"


def list_presets() -> list[str]:
    """Return the names of every shipped model preset, sorted."""
    return sorted(_catalog()[0])


def preset_metadata(name: str) -> dict[str, Any]:
    """Return the "_energaizer" entry of a preset: name, family, source, parameters, aliases."""
    path = _catalog()[0][_resolve_name(name)]
    return dict(_read_json(path)[METADATA_KEY])


def load_model_config(name_or_path: str | Path) -> tuple[dict[str, Any], str]:
    """Return a model's Hugging Face config as a dict, and the name to show for it.

    `name_or_path` is a preset name or alias (case-insensitive, with or without an
    organization prefix such as "meta-llama/"), a path to a config.json, or a folder
    containing one. A name that ends in ".json" is always a path, and a preset name wins
    over a file or folder of the same name. The returned dict keeps its "_energaizer"
    entry when it has one. Raises ProfileError for an unknown preset and InputError for
    an unreadable file or a config without "model_type".
    """
    path = _config_path(name_or_path)
    if path is None:
        name = _resolve_name(str(name_or_path))
        return _read_json(_catalog()[0][name]), name
    config = _read_json(path)
    _check_model_type(config, path)
    metadata = config.get(METADATA_KEY) or {}
    display = metadata.get("name") or _display_name_for_file(path, config)
    return config, display


def _config_path(name_or_path: str | Path) -> Path | None:
    """Return the config file a path-like argument names, or None for a preset name."""
    if isinstance(name_or_path, Path):
        candidate = name_or_path.expanduser()
    else:
        text = name_or_path.strip()
        candidate = Path(text).expanduser()
        is_preset = _preset_for(text) is not None or not candidate.exists()
        if not text.endswith(".json") and is_preset:
            return None
    if candidate.is_dir():
        candidate = candidate / "config.json"
    if not candidate.is_file():
        raise InputError(f"Model config file not found: {candidate}. Pass a preset name "
                         f"({', '.join(list_presets())}) or the path of a config.json.")
    return candidate


def _display_name_for_file(path: Path, config: dict[str, Any]) -> str:
    if path.name == "config.json" and path.parent.name:
        return path.parent.name
    return path.stem if path.stem != "config" else str(config["model_type"])


def _check_model_type(config: dict[str, Any], path: Path) -> None:
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise InputError(
            f"Model config {path} has no \"model_type\" field, so the model class is "
            "unknown. Add the Hugging Face model type, e.g. \"model_type\": \"llama\"."
        )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as file:
            data = json.load(file)
    except OSError as error:
        raise InputError(f"Cannot read model config {path}: {error.strerror}.") from None
    except json.JSONDecodeError as error:
        raise InputError(f"Model config {path} is not valid JSON: {error.msg} at line "
                         f"{error.lineno}, column {error.colno}.") from None
    if not isinstance(data, dict):
        raise InputError(f"Model config {path} must contain a JSON object, "
                         f"not {type(data).__name__}.")
    return data


def _name_key(name: str) -> str:
    return name.strip().lower()


def _preset_for(query: str) -> str | None:
    """Return the preset a name or alias selects, or None."""
    index = _catalog()[1]
    key = _name_key(query)
    if key in index:
        return index[key]
    # "org/model" names match on the model part when the full name is not an alias.
    if "/" in key and key.rsplit("/", 1)[1] in index:
        return index[key.rsplit("/", 1)[1]]
    return None


def _resolve_name(query: str) -> str:
    name = _preset_for(query)
    if name is not None:
        return name
    presets, index = _catalog()
    key = _name_key(query)
    names = sorted(presets)
    close = difflib.get_close_matches(key, sorted(index), n=5, cutoff=0.6)
    suggestions = sorted({index[match] for match in close})
    hint = f" Closest presets: {', '.join(suggestions)}." if suggestions else ""
    raise ProfileError(
        f"Unknown model preset {query!r}.{hint} Available presets: {', '.join(names)}. "
        "Pass the path of a Hugging Face config.json for any other model."
    )


@functools.cache
def _catalog() -> tuple[dict[str, Path], dict[str, str]]:
    """Read the preset folder once: preset name to file, and lowercase name or alias to
    preset name."""
    folder = models_dir()
    presets: dict[str, Path] = {}
    index: dict[str, str] = {}
    for path in sorted(folder.glob("*.json")):
        config = _read_json(path)
        _check_model_type(config, path)
        metadata = config.get(METADATA_KEY)
        if not isinstance(metadata, dict) or metadata.get("name") != path.stem:
            raise ProfileError(f"Model preset {path} needs a \"{METADATA_KEY}\" entry whose "
                               f"name is {path.stem!r}.")
        presets[path.stem] = path
        for alias in [path.stem, *metadata.get("aliases", [])]:
            index[_name_key(alias)] = path.stem
    if not presets:
        raise ProfileError(f"No model presets found in {folder}. Reinstall energaizer.")
    return presets, index
