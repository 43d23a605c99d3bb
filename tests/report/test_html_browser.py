"""Load report.html in headless Chromium: the page renders and shows its images."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

REPOSITORY = Path(__file__).resolve().parents[2]
from energaizer.cli import app

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_TIMEOUT_S = 60
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run")


@pytest.fixture(scope="module")
def browser() -> Path:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found; install the Debian chromium package"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("html")
    result = CliRunner().invoke(app, ["report", str(REPOSITORY / "examples" / "chat-feature.yaml"),
                                      "-o", str(folder)])
    assert result.exit_code == 0, result.output
    return folder / "report.html"


def _run(browser: Path, tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(browser), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                           *arguments], capture_output=True, text=True,
                          timeout=BROWSER_TIMEOUT_S, check=False)


def test_browser_dom_has_images(browser, page, tmp_path):
    done = _run(browser, tmp_path, "--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    images = re.findall(r'<img[^>]*src="data:image/png;base64,([^"]+)"', done.stdout)
    assert len(images) == 4
    assert all(len(image) > 1000 for image in images)
    assert "Cost report" in done.stdout


def _png_pixels_vary(data: bytes) -> bool:
    """True when a PNG's decoded rows are not all one byte value (not a blank page)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, []
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        if kind == b"IDAT":
            chunks.append(data[position + 8:position + 8 + length])
        position += 12 + length
    raw = zlib.decompress(b"".join(chunks))
    return len(set(raw[1:4096])) > 2 or len(set(raw)) > 3


def test_browser_screenshot_not_blank(browser, page, tmp_path):
    shot = tmp_path / "page.png"
    done = _run(browser, tmp_path, f"--screenshot={shot}", "--window-size=1200,2400",
                page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.is_file()
    assert _png_pixels_vary(shot.read_bytes())
