"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The public traces and measurements next to the repository, or the folder named by
    ENERGAIZER_SHARED_DATA."""
    override = os.environ.get("ENERGAIZER_SHARED_DATA")
    return Path(override) if override else REPOSITORY.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the shared data; skips when absent, and fails when absent under CI=true."""
    path = shared_data_dir()
    if not path.is_dir():
        message = f"shared data not found at {path}; set ENERGAIZER_SHARED_DATA"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def dlrm_folder(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 8-rank DLRM traces unpacked to a folder."""
    target = tmp_path_factory.mktemp("dlrm")
    with tarfile.open(shared_data / "traces" / "param" / "v100sxm32_dlrm_8rank_kineto.tar.gz") as archive:
        archive.extractall(target, filter="data")
    return target / "dlrm_kineto"


@pytest.fixture(scope="session", autouse=True)
def template_cache(tmp_path_factory: pytest.TempPathFactory):
    """Keep captured shape templates in a temporary folder, not the user's cache."""
    folder = tmp_path_factory.mktemp("workload-cache")
    previous = os.environ.get("ENERGAIZER_CACHE_DIR")
    os.environ["ENERGAIZER_CACHE_DIR"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("ENERGAIZER_CACHE_DIR", None)
    else:
        os.environ["ENERGAIZER_CACHE_DIR"] = previous
