"""Build a serving spec from a YAML file and command-line overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from energaizer.errors import InputError
from energaizer.serving.spec import ServingSpec, load_serving_spec, spec_from_mapping


def serving_spec_from_options(path: Path | None, **options: Any) -> ServingSpec:
    """Read `path` when given and apply every option that is not None on top of it.

    Without a file, `model` is required. Raises InputError naming what is missing.
    """
    given = {key: value for key, value in options.items() if value is not None}
    if path is not None:
        return load_serving_spec(path, **given)
    if "model" not in given:
        raise InputError("Give a serving spec YAML file or --model with a preset name.")
    return spec_from_mapping(given, origin="serving options")
