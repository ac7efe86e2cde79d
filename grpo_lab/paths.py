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


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file: the same inode where both exist (a link to it, another spelling), else
    the same place once links and ``..`` are resolved."""
    if exists(a) and exists(b):
        try:
            return os.path.samefile(a, b)
        except OSError:
            return False
    try:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):
        return False


NAME_MAX = 255  # bytes in one file name, on the file systems people use

STORE_SIDE_FILES = ("", "-wal", "-shm", "-journal")  # a SQLite store and the files SQLite keeps beside it


def check_target(option: str, path: Path, wanted: str, suffixes: tuple[str, ...] = (), store: Path | None = None,
                 others: dict[str, Path | None] | None = None) -> None:  # fmt: skip
    """A file a command is about to write (``option`` names where it came from, ``wanted`` says what to give):
    neither a folder nor a device, pipe or other special file (it would be replaced), not under a file, with one
    of ``suffixes`` (if given), and never the ``store`` (a SQLite file, its side files, or a link to either) nor
    one of the command's ``others`` outputs (option -> path): a mistyped path must not destroy a file the person
    did not name as this output. Checked before anything is written or deleted."""
    from .errors import GrpoLabError

    if suffixes and path.suffix.lower() not in suffixes:
        raise GrpoLabError(f"{option} {path} does not end in {' or '.join(suffixes)}; give {wanted}")
    if store is not None and any(same_file(path, f"{store}{side}") for side in STORE_SIDE_FILES):
        raise GrpoLabError(f"{option} {path} is the store ({store}); give {wanted}")
    for other, other_path in (others or {}).items():
        if other_path is not None and same_file(path, other_path):
            raise GrpoLabError(f"{option} {path} is the file {other} writes; give each output its own file")
    if is_dir(path):
        raise GrpoLabError(f"{option} {path} is a folder; give {wanted}")
    for parent in path.parents:
        if exists(parent):
            if not is_dir(parent):
                raise GrpoLabError(f"{option} {path}: {parent} is a file, not a folder; choose another {option}")
            break
    if exists(path) and not is_file(path):
        raise GrpoLabError(f"{option} {path} is not a regular file; give {wanted}")
    if len(path.name.encode("utf-8", "surrogateescape")) > NAME_MAX:
        raise GrpoLabError(f"{option}: the name {path.name[:40]}... is longer than a file name may be; give {wanted}")
    nearest = next((p for p in path.absolute().parents if exists(p)), None)
    if nearest is not None and not os.access(nearest, os.W_OK | os.X_OK):  # read-only, or not this user's
        raise GrpoLabError(f"{option} {path}: cannot write in {nearest}; choose a folder you can write to")
