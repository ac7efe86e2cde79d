"""Where the store is: ``--db``, else ``$GRPO_LAB_DB``, else ``./grpo_lab.db``.

A value with ``://`` in it is a database URL; anything else is a file path, taken literally: ``#``, ``?``
and ``%`` are characters of the file name, never URL syntax. SQLite files are opened through quoted
``file:`` URIs built here (``sqlite_uri``), never by pasting a path into a URL. Standard library only,
so that commands which only read start fast.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from ..errors import GrpoLabError
from ..provenance import without_password

DEFAULT_DB = "grpo_lab.db"
# The driver a URL gets when it names none: psycopg 3 (`pip install grpo-lab[postgres]`), not SQLAlchemy's
# default psycopg2.
DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}


class StoreError(GrpoLabError):
    pass


class NoStore(StoreError):
    """The database holds no grpo-lab store (yet): a command that only reads says so; one that records creates it."""


class StoreUnreachable(StoreError):
    """The store cannot be reached for now (the server is down, restarting, or the network is): a run keeps its
    records in its spool meanwhile (spool.py); any other StoreError is not expected to pass by itself."""


@dataclass(frozen=True)
class Location:
    """A SQLite file (``path``) or another database (``url``, an SQLAlchemy URL; its password is never shown)."""

    path: Path | None = None
    url: str | None = None
    source: str = "--db"  # where it came from: --db, $GRPO_LAB_DB, or the default

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else without_password(self.url or "")

    @property
    def backend(self) -> str:
        """``sqlite``, or the URL's dialect name (``postgresql``, ``mysql``, ...)."""
        if self.path is not None:
            return "sqlite"
        return (self.url or "").split("://", 1)[0].split("+", 1)[0]


def locate(db: str | None = None) -> Location:
    """The store ``--db`` names (None: ``$GRPO_LAB_DB``, else ``./grpo_lab.db``). Refuses values that would
    lose every run (an in-memory database) or that name nothing."""
    source = "--db"
    if db is None:
        env = os.environ.get("GRPO_LAB_DB")
        db, source = (env, "$GRPO_LAB_DB") if env else (DEFAULT_DB, "the default")
    if not db.strip():
        raise StoreError(f"{source} is empty; give a store file (grpo_lab.db) or a database URL")
    if "://" not in db:
        return Location(path=_file(db, source), source=source)
    scheme, rest = db.split("://", 1)
    dialect = scheme.split("+", 1)[0].lower()
    if dialect == "sqlite":
        if not rest.startswith("/"):
            raise StoreError(f"{source} {db!r}: write a SQLite URL as sqlite:///FILE, or give the file path itself")
        database = rest[1:]
        if "?" in database:
            raise StoreError(f"{source} {db!r}: SQLite URL options are not supported; give the file path itself")
        return Location(path=_file(unquote(database), source), source=source)
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        raise StoreError(f"{source} {without_password(db)!r} is neither a file path nor a database URL")
    return Location(url=DEFAULT_DRIVERS.get(scheme.lower(), scheme) + "://" + rest, source=source)


def _file(name: str, source: str) -> Path:
    if not name.strip() or name == ":memory:":
        raise StoreError(
            f"{source} {name!r} is an in-memory database: every run recorded there is lost when the command ends; "
            "give a store file such as grpo_lab.db"
        )
    path = Path(name).absolute()
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):  # not there yet (or a name no file system takes: refused where it is opened)
        return path
    if stat.S_ISDIR(mode):
        raise StoreError(f"{source} {name} is a folder; give a store file in it, e.g. {Path(name) / DEFAULT_DB}")
    if not stat.S_ISREG(mode):  # a pipe would block every command that opens it; a device is no store
        raise StoreError(f"{source} {name} is not a regular file; give a store file such as grpo_lab.db")
    return path


def sqlite_uri(path: Path, **params: str) -> str:
    """A ``file:`` URI for sqlite3.connect(uri=True) naming exactly ``path``, with options (mode=ro, immutable=1)."""
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return "file:" + quote(str(Path(path).absolute()), safe="/") + (f"?{query}" if query else "")
