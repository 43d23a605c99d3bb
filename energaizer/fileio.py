"""Write files atomically: a process killed mid-write leaves the old file or the new one.

Data goes to a temporary file in the target's folder (named `.<name>.<random>`, so
loaders that look for the target name or its suffix never pick it up), is flushed to
disk, and is renamed over the target in one step.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_atomically(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(temporary_path)`, then rename the temporary file over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        with open(temporary, "rb+") as stream:
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def write_text_atomically(path: str | Path, text: str) -> Path:
    """Write UTF-8 text atomically."""
    return write_atomically(path, lambda target: target.write_text(text, encoding="utf-8"))


def write_json_atomically(data: Any, path: str | Path) -> Path:
    """Write indented JSON atomically."""
    return write_text_atomically(path, json.dumps(data, indent=2, default=str) + "\n")


def make_output_folder(path: str | Path, option: str = "--output") -> Path:
    """Create the output folder `path` and its parents unless they exist.

    Raises InputError when `path` is an existing file, cannot be created or is not
    writable, so commands report it instead of failing on their first write. `option`
    names the command-line option in the message.
    """
    from energaizer.errors import InputError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"Output folder {path} is an existing file; give {option} a new or "
                         "existing folder.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"Cannot create output folder {path}: {error.strerror}. Give "
                         f"{option} a folder you can write to.") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise InputError(f"Output folder {path} is not writable; give {option} a folder "
                         "you can write to.")
    return path


def check_output_file(path: str | Path, option: str = "--output") -> Path:
    """Check the output file `path` before a long run writes it.

    Raises InputError when `path` is an existing folder or a part of its folder path is
    an existing file.
    """
    from energaizer.errors import InputError

    path = Path(path)
    if path.is_dir():
        raise InputError(f"Output file {path} is an existing folder; give {option} a file "
                         "path, such as a name inside that folder.")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise InputError(f"Cannot write output file {path}: {parent} is a file, not a "
                             f"folder. Give {option} another path.")
    return path


def path_inside(base: Path, relative: str | Path, what: str) -> Path:
    """Resolve a path named in a spec file against the spec's folder.

    Raises InputError when it is absolute or leads outside that folder (through `..` or
    a symbolic link), so a spec can only point at files it ships with.
    """
    from energaizer.errors import InputError

    candidate = Path(relative)
    if candidate.is_absolute():
        raise InputError(f"{what} {relative} is an absolute path; spec files may only name "
                         f"paths inside their own folder ({base}).")
    folder = base.resolve()
    resolved = (folder / candidate).resolve()
    if resolved != folder and folder not in resolved.parents:
        raise InputError(f"{what} {relative} leads outside the spec's folder ({base}); "
                         "move the file next to the spec.")
    return resolved


def read_yaml(path: str | Path, what: str) -> Any:
    """Read a YAML file with `yaml.safe_load`; `what` names it in errors ("budget").

    Raises InputError when the file cannot be read or is not valid YAML.
    """
    import yaml

    from energaizer.errors import InputError

    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InputError(f"Cannot read {what} {path}: {error.strerror}.") from None
    except UnicodeDecodeError as error:
        raise InputError(f"{what[:1].upper()}{what[1:]} {path} is not UTF-8 text (byte "
                         f"{error.start}); save it as UTF-8 YAML.") from None
    except yaml.YAMLError as error:
        raise InputError(f"{what[:1].upper()}{what[1:]} {path} is not valid YAML: {error}.") from None
