"""The README's shell examples use commands and options the CLI has."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import typer.main

from energaizer.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def _shell_lines() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def _energaizer_commands() -> list[list[str]]:
    commands = []
    for line in _shell_lines():
        if line.startswith("energaizer "):
            commands.append(shlex.split(line, comments=True)[1:])
    return commands


def test_readme_options_exist():
    group = typer.main.get_command(app)
    checked = 0
    for words in _energaizer_commands():
        command = group.commands.get(words[0])
        assert command is not None, f"README: unknown command {' '.join(words)}"
        known = {name for param in command.params for name in param.opts + param.secondary_opts}
        # Words after "--" belong to the program that `measure` runs.
        own_words = words[1: words.index("--")] if "--" in words else words[1:]
        for word in own_words:
            if word.startswith("-"):
                assert word.split("=")[0] in known, f"README: {' '.join(words)}: {word}"
        checked += 1
    assert checked > 10


def test_readme_history_workload_positional():
    history_lines = [words for words in _energaizer_commands() if words[0] == "history"]
    assert history_lines
    for words in history_lines:
        assert words[1] == "my-model", words


def test_readme_validate_follows_conversion():
    lines = _shell_lines()
    convert = next(i for i, line in enumerate(lines) if "convert_energaizer_ispass26.py" in line)
    validate = next(i for i, line in enumerate(lines) if line.startswith("energaizer validate"))
    assert convert < validate
    # The converter takes SOURCE_DIR and OUT_DIR, and validate reads a file it writes.
    arguments = shlex.split(lines[convert], comments=True)[2:]
    assert len(arguments) == 2
    validated = shlex.split(lines[validate], comments=True)[2]
    assert Path(validated).parent == Path(arguments[1])
