"""A writer killed at any moment leaves a calibration profile old or new, never partial."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from energaizer.calibrate.profile import load_calibration

REPOSITORY = Path(__file__).resolve().parents[1]
SHIPPED_PROFILE = REPOSITORY / "calibration" / "a100-pcie-40gb.json"
KILLS = 8
# Rows added to `fitted_on` so each write takes milliseconds, long enough to be killed
# in the middle of one.
PADDING_ROWS = 20_000

# Rewrites the profile in a loop, alternating two versions, through the helper the
# product uses. It prints "ready" once imports are done so kills land during writes.
WRITER = """
import json, sys
from pathlib import Path
from energaizer.calibrate.profile import write_json_atomically

target = Path(sys.argv[1])
versions = [json.loads(Path(name).read_text()) for name in sys.argv[2:4]]
print("ready", flush=True)
index = 0
while True:
    write_json_atomically(versions[index % 2], target)
    index += 1
"""


def _profile_version(label: str) -> dict:
    profile = json.loads(SHIPPED_PROFILE.read_text())
    profile["fitted_on"] = {
        "version": label,
        "rows": [{"kernel": f"{label}-{row}", "time_s": row * 1e-6} for row in range(PADDING_ROWS)],
    }
    return profile


def test_killed_writer_leaves_complete_profile(tmp_path):
    versions = {label: _profile_version(label) for label in ("old", "new")}
    sources = []
    for label, profile in versions.items():
        source = tmp_path / f"{label}-source.txt"
        source.write_text(json.dumps(profile))
        sources.append(str(source))
    folder = tmp_path / "profiles"
    folder.mkdir()
    target = folder / "a100-pcie-40gb.json"
    target.write_text(json.dumps(versions["old"], indent=2) + "\n")
    rng = random.Random(20240601)

    for attempt in range(KILLS):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(target), *sources],
            stdout=subprocess.PIPE, cwd=REPOSITORY,
        )
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.25))
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
        assert writer.returncode == -signal.SIGKILL

        content = json.loads(target.read_text())
        assert content in (versions["old"], versions["new"]), f"partial file after kill {attempt}"
        loaded = load_calibration(target)
        assert loaded.fitted_on["version"] in ("old", "new")

        # Only the killed writer's temporary file may remain; its name starts with
        # ".a100-pcie-40gb.json." so `*.json` globs and exact-name loads never see it.
        others = [path.name for path in folder.iterdir() if path != target]
        for name in others:
            assert name.startswith(f".{target.name}."), f"unexpected file {name}"
            assert not name.endswith(".json"), f"temporary file {name} looks like a profile"
        assert sorted(folder.glob("*.json")) == [target]
