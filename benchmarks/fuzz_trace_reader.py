"""Fuzz the trace reader for a fixed time and record every crash with a reproducer.

Usage:
    python benchmarks/fuzz_trace_reader.py --seconds 120 [--out fuzz-out] [--engine atheris]

Every input goes through each parser path: strict and lenient `read_trace` on a file,
`decode_trace`, the lenient scanner `scan_events` and, when `energaizer.trace.stream`
exists, the streaming reader with small reads. A TraceError (or a subclass) is the
documented answer to bad input; any other exception is a crash. Each new crash kind (the
exception type and the innermost energaizer line) is written to `OUT/crashes/` as the
exact file bytes (`.bin`) and the traceback (`.txt`), then fuzzing goes on.

The first byte of an input selects how the rest is stored: plain, gzip, or gzip cut
short. Seeds are small generated Kineto traces plus, when present, slices of the public
traces in `../shared/data/traces`.

Engines: `atheris` (coverage-guided libFuzzer, `pip install atheris`) and `random` (byte
flips, cuts, splices and token insertions on the seeds, with no extra package). The
default is atheris when it is importable.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import json
import os
import random
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[1]
SHARED_TRACES = REPOSITORY.parent / "shared" / "data" / "traces"
SHARED_SEEDS = ("hta/a100pg509_triton_example_tiny.json.gz", "tracelens/h100_bert-small_infer.json.gz")
SEED_EVENTS_PER_SHARED_TRACE = 40
MAX_INPUT_BYTES = 1 << 16

STORE_PLAIN, STORE_GZIP, STORE_GZIP_CUT = 0, 1, 2

# JSON and Kineto tokens the mutators insert; they also form the libFuzzer dictionary.
TOKENS = [
    b'"traceEvents"', b'"deviceProperties"', b'"distributedInfo"', b'"args"', b'"ph"',
    b'"X"', b'"cat"', b'"kernel"', b'"cuda_runtime"', b'"cpu_op"', b'"gpu_memcpy"',
    b'"ts"', b'"dur"', b'"name"', b'"pid"', b'"tid"', b'"correlation"', b'"External id"',
    b'"grid"', b'"block"', b'"device"', b'"stream"', b'"registers per thread"',
    b"},{", b"}", b"{", b"[", b"]", b",", b":", b'"', b"\\", b"\\u0000", b"\\ud800",
    b"null", b"true", b"1e400", b"-0", b"18446744073709551615", b"9007199254740993",
    b"99999999999999999999999999999", b'"\xff"', b"\x01", b"\xef\xbb\xbf",
]


def _kernel(index: int, ts_us: float) -> dict[str, Any]:
    return {
        "ph": "X", "cat": "kernel", "name": f"gemm_{index}", "pid": 0, "tid": 7,
        "ts": ts_us, "dur": 5.0,
        "args": {"device": 0, "stream": 7, "correlation": index, "External id": index,
                 "grid": [108, 1, 1], "block": [128, 1, 1], "registers per thread": 64},
    }


def _generated_trace() -> dict[str, Any]:
    events: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": 0, "args": {"name": "GPU 0"}},
    ]
    for index in range(1, 6):
        ts_us = 1_000.0 + 20.0 * index
        events.append({"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": "CPU functions",
                       "tid": 100, "ts": ts_us, "dur": 8,
                       "args": {"External id": index, "Input Dims": [[4, 4], [4, 4]]}})
        events.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel",
                       "pid": 100, "tid": 100, "ts": ts_us + 2, "dur": 3,
                       "args": {"correlation": index, "External id": index}})
        events.append(_kernel(index, ts_us + 6))
    return {
        "schemaVersion": 1,
        "deviceProperties": [{"id": 0, "name": "NVIDIA A100-SXM4-80GB", "numSms": 108}],
        "distributedInfo": {"rank": 0, "world_size": 1},
        "traceEvents": events,
    }


def _shared_seed(name: str) -> bytes | None:
    path = SHARED_TRACES / name
    if not path.is_file():
        return None
    document = json.loads(gzip.decompress(path.read_bytes()))
    document["traceEvents"] = document["traceEvents"][:SEED_EVENTS_PER_SHARED_TRACE]
    return json.dumps(document, indent=1).encode()


def seed_inputs() -> list[bytes]:
    """Return the seed inputs, each with its storage byte in front."""
    document = _generated_trace()
    plain = json.dumps(document).encode()
    array_form = json.dumps(document["traceEvents"]).encode()
    seeds = [
        bytes([STORE_PLAIN]) + plain,
        bytes([STORE_PLAIN]) + array_form,
        bytes([STORE_GZIP]) + plain,
        bytes([STORE_GZIP_CUT]) + plain,
        bytes([STORE_PLAIN]) + json.dumps(document, indent=2).encode(),
    ]
    for name in SHARED_SEEDS:
        shared = _shared_seed(name)
        if shared is not None:
            seeds.append(bytes([STORE_PLAIN]) + shared[:MAX_INPUT_BYTES])
    return seeds


def stored_bytes(fuzz_input: bytes) -> bytes:
    """Return the file bytes an input stands for: its first byte selects the storage."""
    if not fuzz_input:
        return b""
    store, body = fuzz_input[0] % 3, fuzz_input[1:]
    if store == STORE_PLAIN:
        return body
    compressed = gzip.compress(body, mtime=0)
    if store == STORE_GZIP:
        return compressed
    return compressed[: max(10, len(compressed) // 2)]


class Checker:
    """Run every parser path on one file's bytes and record crashes."""

    def __init__(self, out: Path) -> None:
        from energaizer.errors import TraceError
        from energaizer.trace import read_trace
        from energaizer.trace.decode import decode_trace
        from energaizer.trace.scan import scan_events

        self.trace_error = TraceError
        self.crash_folder = out / "crashes"
        self.crash_folder.mkdir(parents=True, exist_ok=True)
        self.file = Path(tempfile.mkdtemp(prefix="fuzz-trace-")) / "input.json"
        self.inputs = 0
        self.crashes = 0
        self.kinds: dict[str, str] = {}
        self.paths: list[tuple[str, Callable[[bytes], Any]]] = [
            ("read_trace strict", lambda data: read_trace(self.file)),
            ("read_trace lenient", lambda data: read_trace(self.file, lenient=True)),
            ("decode_trace strict", lambda data: decode_trace(data, "input")),
            ("decode_trace lenient", lambda data: decode_trace(data, "input", lenient=True)),
            ("scan_events", lambda data: scan_events(data)),
        ]
        if importlib.util.find_spec("energaizer.trace.stream") is not None:
            from energaizer.trace.stream import stream_trace

            self.paths.append((
                "stream_trace",
                lambda data: stream_trace(self.file, read_bytes=512, flush_rows=4),
            ))

    def check(self, fuzz_input: bytes) -> None:
        self.inputs += 1
        file_bytes = stored_bytes(fuzz_input)
        self.file.write_bytes(file_bytes)
        json_bytes = _plain_json(file_bytes)
        for name, run in self.paths:
            data = json_bytes if name.startswith(("decode", "scan")) else file_bytes
            if data is None:
                continue
            try:
                run(data)
            except self.trace_error:
                pass
            except Exception as error:  # noqa: BLE001 - any other exception is a finding
                self._record(name, error, file_bytes)

    def _record(self, path_name: str, error: Exception, file_bytes: bytes) -> None:
        self.crashes += 1
        frames = traceback.extract_tb(error.__traceback__)
        ours = [frame for frame in frames if "energaizer" in frame.filename] or frames
        where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
        kind = f"{type(error).__name__} at {where}"
        if kind in self.kinds:
            return
        digest = hashlib.sha1(file_bytes).hexdigest()[:12]
        stem = f"crash-{type(error).__name__}-{digest}"
        self.kinds[kind] = stem
        (self.crash_folder / f"{stem}.bin").write_bytes(file_bytes)
        details = "".join(traceback.format_exception(error))
        (self.crash_folder / f"{stem}.txt").write_text(f"path: {path_name}\n{details}")
        print(f"new crash kind: {kind} via {path_name} -> {stem}.bin", flush=True)

    def summary(self, engine: str, elapsed_s: float) -> dict[str, Any]:
        return {
            "engine": engine,
            "seconds": round(elapsed_s, 1),
            "inputs": self.inputs,
            "crashing_inputs": self.crashes,
            "crash_kinds": self.kinds,
        }


def _plain_json(file_bytes: bytes) -> bytes | None:
    """Return the JSON bytes of a stored file, or None when its gzip data is unusable."""
    if not file_bytes.startswith(b"\x1f\x8b"):
        return file_bytes
    try:
        return gzip.decompress(file_bytes)
    except (OSError, EOFError, ValueError):
        return None


def _mutate(seed: bytes, seeds: list[bytes], rng: random.Random) -> bytes:
    """Apply one to four random byte-level edits to `seed`."""
    data = bytearray(seed)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(6)
        position = rng.randrange(len(data) + 1)
        if choice == 0 and data:
            data[min(position, len(data) - 1)] = rng.randrange(256)
        elif choice == 1:
            del data[position:]
        elif choice == 2:
            data[position:position] = rng.choice(TOKENS)
        elif choice == 3:
            del data[position : position + rng.randint(1, 64)]
        elif choice == 4:
            other = rng.choice(seeds)
            start = rng.randrange(len(other))
            data[position:position] = other[start : start + rng.randint(1, 256)]
        else:
            start = rng.randrange(len(data) + 1)
            data[position:position] = data[start : start + rng.randint(1, 128)]
    return bytes(data[:MAX_INPUT_BYTES])


def run_random(checker: Checker, seconds: float, seed: int) -> None:
    rng = random.Random(seed)
    seeds = seed_inputs()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        checker.check(_mutate(rng.choice(seeds), seeds, rng))


def run_atheris(checker: Checker, seconds: float, out: Path, seed: int) -> None:
    import atheris

    corpus = out / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for index, seed_input in enumerate(seed_inputs()):
        (corpus / f"seed-{index}").write_bytes(seed_input)
    dictionary = out / "json.dict"
    dictionary.write_text("".join(f'"{_dictionary_escape(token)}"\n' for token in TOKENS))
    deadline = time.monotonic() + seconds
    started = time.monotonic()

    def test_one_input(fuzz_input: bytes) -> None:
        if time.monotonic() >= deadline:
            summary = _finish(checker, "atheris", time.monotonic() - started, out)
            # libFuzzer never returns from Fuzz(), so the process ends here.
            os._exit(1 if summary["crash_kinds"] else 0)
        checker.check(fuzz_input)

    atheris.Setup(
        [sys.argv[0], f"-max_len={MAX_INPUT_BYTES}", f"-dict={dictionary}", f"-seed={seed}",
         "-rss_limit_mb=4096", str(corpus)],
        test_one_input,
    )
    atheris.Fuzz()


def _dictionary_escape(token: bytes) -> str:
    """Escape a token for a libFuzzer dictionary, which accepts only `\\xNN` escapes."""
    return "".join(
        chr(byte) if 0x20 <= byte < 0x7F and byte not in b'"\\' else f"\\x{byte:02x}"
        for byte in token
    )


def _finish(checker: Checker, engine: str, elapsed_s: float, out: Path) -> dict[str, Any]:
    summary = checker.summary(engine, elapsed_s)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2), flush=True)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0,
                        help="fuzzing time in seconds (default 120)")
    parser.add_argument("--out", type=Path, default=Path("fuzz-out"),
                        help="folder for crashes/, the corpus and summary.json")
    parser.add_argument("--engine", choices=("atheris", "random"), default=None,
                        help="fuzzing engine (default: atheris when installed, else random)")
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    options = parser.parse_args()
    engine = options.engine
    if engine is None:
        engine = "atheris" if importlib.util.find_spec("atheris") else "random"
    options.out.mkdir(parents=True, exist_ok=True)

    if engine == "atheris":
        import atheris

        with atheris.instrument_imports(include=["energaizer"]):
            checker = Checker(options.out)
        run_atheris(checker, options.seconds, options.out, options.seed)
        return 0
    checker = Checker(options.out)
    started = time.monotonic()
    run_random(checker, options.seconds, options.seed)
    summary = _finish(checker, engine, time.monotonic() - started, options.out)
    return 1 if summary["crash_kinds"] else 0


if __name__ == "__main__":
    sys.exit(main())
