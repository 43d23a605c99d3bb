"""Input files are parsed as data: YAML tags never run code, estimates never use the
network."""

from __future__ import annotations

import socket

import pytest
from factories import trace_document, training_steps, write_trace

import energaizer
from energaizer.errors import ProfileError
from energaizer.hardware.profiles import load_profile

# Each tag makes an unsafe YAML loader create a file or import a function.
# yaml.safe_load rejects them all.
UNSAFE_TAGS = [
    "!!python/object/apply:pathlib.Path.touch [[{marker}]]",
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object:pathlib.PosixPath {{}}",
    "!!python/name:os.system",
]


@pytest.mark.parametrize("tag", UNSAFE_TAGS)
def test_profile_yaml_tags_do_not_execute(tmp_path, tag):
    marker = tmp_path / "executed"
    path = tmp_path / "gpu.yaml"
    path.write_text(f"id: evil\nname: {tag.format(marker=marker)}\n")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile(str(path))
    assert not marker.exists()


@pytest.fixture
def no_network(monkeypatch):
    """Make every way of opening a connection raise, and record the attempts."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access attempted during a test that forbids it")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_trace_estimate_uses_no_network(tmp_path, no_network):
    path = write_trace(tmp_path / "trace.json", trace_document(training_steps()))
    result = energaizer.estimate(trace=path)
    assert result is not None
    assert no_network == []


def test_model_estimate_uses_no_network(no_network):
    result = energaizer.estimate(model="gpt2", gpu="a100-pcie-40gb")
    assert result is not None
    assert no_network == []


def test_spec_paths_cannot_escape_their_folder(tmp_path):
    import pytest

    from energaizer.errors import InputError
    from energaizer.serving.spec import load_serving_spec
    from energaizer.sweep.grid import load_grid

    (tmp_path / "outside.json").write_text("{}")
    specs = tmp_path / "specs"
    specs.mkdir()
    serving = specs / "serving.yaml"
    for reference in ("../outside.json", str(tmp_path / "outside.json")):
        serving.write_text(f"model: gpt2\ncalibration: {reference}\n")
        with pytest.raises(InputError, match="spec"):
            load_serving_spec(serving)
    grid = specs / "grid.yaml"
    grid.write_text("traces: [../outside.json]\ngpus: [a100-pcie-40gb]\n")
    with pytest.raises(InputError, match="outside"):
        load_grid(grid)
    grid.write_text("models: [gpt2]\ngpus: [a100-pcie-40gb]\ncalibration: ../outside.json\n")
    with pytest.raises(InputError, match="outside"):
        load_grid(grid)
