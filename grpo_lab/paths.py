"""Looking at a path a person typed without the look itself failing: a name too long for the file system, a
folder one may not enter or a loop of links answer "not there" here, and the caller says what to do."""

from __future__ import annotations

import os
from pathlib import Path


def _mode(path: str | os.PathLike) -> int | None:
    try:
        return Path(path).expanduser().stat().st_mode
    except (OSError, ValueError):  # ENAMETOOLONG, EACCES, ELOOP; ValueError: a NUL byte in the name
        return None


def exists(path: str | os.PathLike) -> bool:
    return _mode(path) is not None


def is_dir(path: str | os.PathLike) -> bool:
    import stat

    mode = _mode(path)
    return mode is not None and stat.S_ISDIR(mode)


def is_file(path: str | os.PathLike) -> bool:
    """A regular file (not a device, a pipe or a folder)."""
    import stat

    mode = _mode(path)
    return mode is not None and stat.S_ISREG(mode)


def check_target(option: str, path: Path, wanted: str) -> None:
    """A file a command is about to write (``option`` names where it came from, ``wanted`` says what to give):
    neither a folder nor a device, pipe or other special file (it would be replaced), and not under a file."""
    from .errors import GrpoLabError

    if is_dir(path):
        raise GrpoLabError(f"{option} {path} is a folder; give {wanted}")
    for parent in path.parents:
        if exists(parent):
            if not is_dir(parent):
                raise GrpoLabError(f"{option} {path}: {parent} is a file, not a folder; choose another {option}")
            break
    if exists(path) and not is_file(path):
        raise GrpoLabError(f"{option} {path} is not a regular file; give {wanted}")
