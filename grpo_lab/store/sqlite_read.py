"""Read-only access to SQLite stores with the stdlib ``sqlite3``: fast to import, never writes.

Used to refuse files that are not grpo-lab stores before anything touches them, to say in one line what is
wrong with a file that cannot be used, and by compare and runs, whose whole command must stay well under a
second over 10,000 runs.

A store is readable by anyone who may read its file: writers leave it in rollback-journal mode when the last
of them closes it (``settle``), and readers open it read-only (``mode=ro``), or as an immutable snapshot when
it was left in WAL mode in a folder the reader may not write. A command that only reads never writes a store
it may not write: an upgrade that is due is refused in one line, a crash that is due to be marked is reported.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from . import query
from .location import DEFAULT_DB, Location, StoreError, locate, sqlite_uri  # noqa: F401  (re-exported)

# The schema steps this grpo-lab knows, in order; db.py registers a migration for each and checks the list.
KNOWN_MIGRATIONS = ("m001_initial", "m002_predictions", "m003_held_out_ops", "m004_metrics", "m005_sweeps",
                    "m007_rerun", "m008_tasks_and_knobs", "m009_suite_records")  # fmt: skip
STALE_AFTER = timedelta(minutes=5)  # a running run whose heartbeat is older than this is presumed dead
TIMEOUT_S = 30


def explain(exc: sqlite3.Error, path: Path | str) -> StoreError | None:
    """A one-line StoreError for a SQLite error the user can act on (a damaged, full, locked or unreadable
    store); None for anything else, which is a bug and keeps its traceback."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name.startswith("SQLITE_NOTADB") or "file is not a database" in text:
        return StoreError(f"{path} is not a grpo-lab store (not an SQLite database); point --db elsewhere")
    if name.startswith("SQLITE_CORRUPT") or "malformed" in text:
        return StoreError(
            f"{path} is damaged ({text}); restore it from a backup, or save what is left with sqlite3 {path} .recover"
        )
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        return StoreError(f"the disk holding {path} is full ({text}); free some space and run the command again")
    if name.startswith("SQLITE_READONLY") or "readonly database" in text:
        return StoreError(f"{path} is read-only to you ({text}); choose a store you may write with --db")
    if name.startswith("SQLITE_BUSY") or "database is locked" in text:
        return StoreError(f"{path} stayed locked by another process for {TIMEOUT_S} s; try again when it is done")
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")) or "unable to open" in text:
        return StoreError(f"cannot open {path} ({text}); check that it exists and that you may read it")
    if name.startswith("SQLITE_IOERR") or "disk I/O error" in text:
        return StoreError(f"reading or writing {path} failed ({text}); check the disk it is on")
    return None


def _in_wal_mode(path: Path) -> bool:
    """Whether the file's header says WAL mode (bytes 18-19 are 2; 1 is the rollback journal)."""
    try:
        with open(path, "rb") as f:
            header = f.read(20)
    except OSError:
        return False
    return len(header) == 20 and header[18] == 2


def may_write(path: Path) -> bool:
    """Whether this user may write the store and create its journal next to it."""
    folder = path.parent
    return os.access(folder, os.W_OK | os.X_OK) and (not path.exists() or os.access(path, os.W_OK))


def read_uri(path: Path) -> str:
    """How to open ``path`` for reading: read-only, or as an immutable snapshot when it was left in WAL mode in a
    folder this user may not write (SQLite would have to create its shared-memory file there)."""
    if may_write(path) or not _in_wal_mode(path):
        return sqlite_uri(path, mode="ro")
    wal, shm = (path.with_name(path.name + suffix) for suffix in ("-wal", "-shm"))
    if wal.exists() and shm.exists():
        return sqlite_uri(path, mode="ro")  # SQLite >= 3.22 reads WAL read-only through existing files
    if wal.exists() and wal.stat().st_size > 0:
        raise StoreError(
            f"{path} has unsaved changes in {wal.name} and you may not write its folder; "
            "ask its owner to run any grpo-lab command on it (or to copy it to you)"
        )
    return sqlite_uri(path, immutable="1")  # nothing outside the file: reading it as it is, is reading it all


def connect_read(path: Path) -> sqlite3.Connection:
    """A read-only connection; refuses a missing or unreadable file in one line."""
    if not path.exists():
        raise StoreError(f"no grpo-lab store at {path}")
    if not os.access(path, os.R_OK):
        raise StoreError(f"cannot read {path}: permission denied; ask its owner to let you read it")
    try:
        conn = sqlite3.connect(read_uri(path), uri=True, timeout=TIMEOUT_S, check_same_thread=False)
    except sqlite3.Error as exc:
        raise explain(exc, path) or exc from None
    conn.text_factory = lenient_text
    return conn


def connect_write(path: Path) -> sqlite3.Connection:
    """A read-write connection (creating the file), for the SQLAlchemy engine of a store that records."""
    conn = sqlite3.connect(sqlite_uri(path, mode="rwc"), uri=True, timeout=TIMEOUT_S, check_same_thread=False)
    conn.text_factory = lenient_text
    return conn


def lenient_text(raw: bytes) -> str:
    """A text column as Python reads it: bytes that are not UTF-8 (another program wrote them) read as U+FFFD
    rather than failing the whole query."""
    return raw.decode("utf-8", "replace")


def settle(path: Path) -> bool:
    """Leave the store in rollback-journal mode, everything checkpointed into the file, so that anyone who may
    read the file can read it (the sqlite3 shell included), also from a folder they may not write. Only when no
    other connection has it open: while one does, it stays in WAL mode, and the last writer to close settles it."""
    if not path.exists() or not _in_wal_mode(path):
        return True
    try:
        conn = sqlite3.connect(sqlite_uri(path, mode="rw"), uri=True, timeout=0)
        try:
            return conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0] == "delete"
        finally:
            conn.close()
    except sqlite3.Error:  # busy: another process has it open and will settle it when it closes
        return False


def applied_migrations(path: Path) -> set[str] | None:
    """The migrations recorded in a SQLite file; None for an empty file. Refuses files that are not stores."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    conn = connect_read(path)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        applied = {r[0] for r in conn.execute("SELECT name FROM _migrations")} if "_migrations" in tables else None
    except sqlite3.Error as exc:
        raise explain(exc, path) or exc from None
    finally:
        conn.close()
    if applied is None and tables:
        raise StoreError(f"{path} is an SQLite database but not a grpo-lab store; point --db elsewhere")
    if applied is not None:
        check_known(applied, str(path))
    return applied


def check_integrity(path: Path) -> None:
    """Refuse a damaged file before a command writes into it (``PRAGMA quick_check``: every page, no index
    cross-checks)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    conn = connect_read(path)
    try:
        problems = [r[0] for r in conn.execute("PRAGMA quick_check(3)")]
    except sqlite3.Error as exc:
        raise explain(exc, path) or exc from None
    finally:
        conn.close()
    if problems != ["ok"]:
        raise StoreError(
            f"{path} is damaged ({problems[0]}); restore it from a backup, or save what is left with "
            f"sqlite3 {path} .recover"
        )


def check_known(applied: set[str], where: str) -> None:
    unknown = applied - set(KNOWN_MIGRATIONS)
    if unknown:
        raise StoreError(
            f"{where} was written by a newer grpo-lab (schema steps {', '.join(sorted(unknown))}); "
            "upgrade grpo-lab (pip install -U grpo-lab) to use it"
        )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed but not yet reaped by its parent) is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def stale_after() -> timedelta:
    """STALE_AFTER, or $GRPO_LAB_STALE_SECONDS (tests shorten it together with the heartbeat interval)."""
    seconds = os.environ.get("GRPO_LAB_STALE_SECONDS")
    return timedelta(seconds=float(seconds)) if seconds else STALE_AFTER


def presumed_dead(host: str, pid: int | None, heartbeat: str, this_host: str, alive=pid_alive) -> str | None:
    """Why a run marked running is not running any more, or None if it may still be."""
    if host == this_host and pid is not None and not alive(pid):
        return "its process is gone"
    beat = datetime.fromisoformat(heartbeat)
    if beat < datetime.now(timezone.utc) - stale_after():
        return f"no heartbeat since {beat.isoformat(timespec='seconds')}"
    return None


def crash_values(reason: str, beat: str, started_at: str, output_dir: str | None = None) -> dict[str, Any]:
    """The columns of a run presumed dead: crashed, why (and where its records wait if it lost the store and kept
    them in its spool), and when it was last heard of."""
    from .spool import waiting

    error = f"the run stopped without a word ({reason})"
    kept = waiting(output_dir)
    if kept:
        error = f"the run lost the store ({reason}); {kept}"
    duration = (datetime.fromisoformat(beat) - datetime.fromisoformat(started_at)).total_seconds()
    return {"status": "crashed", "error": error, "finished_at": beat, "duration_s": duration}


def due_writes(path: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """What a plain read would have to write first: the migrations not yet applied, and the runs marked
    running whose process is gone ((ID, why) pairs)."""
    applied = applied_migrations(path) or set()
    pending = [name for name in KNOWN_MIGRATIONS if name not in applied]
    if pending:
        return pending, []
    conn = connect_read(path)
    try:
        running = conn.execute(
            "SELECT id, host, pid, COALESCE(heartbeat_at, started_at) FROM run WHERE status = 'running'"
        ).fetchall()
    except sqlite3.Error as exc:
        raise explain(exc, path) or exc from None
    finally:
        conn.close()
    here = socket.gethostname()
    dead = [(run_id, why) for run_id, host, pid, beat in running if (why := presumed_dead(host, pid, beat, here))]
    return pending, dead


def prepare(path: Path) -> list[str]:
    """Make a store ready for a plain read: upgrade it or mark its crashed runs when that is due and this user may
    write it (through the full store). Returns notices for what is due but could not be done; refuses a store that
    needs an upgrade this user may not write."""
    if not path.exists():
        raise StoreError(f"no grpo-lab store at {path}; check --db or $GRPO_LAB_DB (grpo-lab run creates one)")
    pending, dead = due_writes(path)
    if not pending and not dead:
        return []
    if may_write(path):
        from .db import Store  # SQLAlchemy only when a write is due

        Store(Location(path=path), reap=True).close()
        return []
    if pending:
        raise StoreError(
            f"{path} was written by an older grpo-lab and needs an upgrade ({', '.join(pending)}) that you may not "
            "write; ask its owner to run any grpo-lab command on it, or copy it to a folder of yours"
        )
    return [f"run {run_id} looks crashed ({why}) but stays marked running: you may not write {path}"
            for run_id, why in dead]  # fmt: skip


def table_rows(
    path: Path,
    conditions: Sequence[query.Condition] = (),
    ids: Sequence[str] | None = None,
    tag: str | None = None,
    last: int | None = None,
    order: tuple[str, str, bool] | None = None,
    limit: int | None = None,
    names: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Runs as dicts with their ``config`` decoded and their ``metrics`` (those in ``names``, when given), filtered
    and sorted in SQL with bound values (query.py says how), newest first unless ``order`` says otherwise."""
    conn = connect_read(path)
    try:
        return query.table_rows("sqlite", lambda sql, p: conn.execute(sql, p).fetchall(), conditions, ids, tag,
                                last, order, limit, names)  # fmt: skip
    except sqlite3.Error as exc:
        raise explain(exc, path) or exc from None
    finally:
        conn.close()


def count_rows(path: Path, conditions: Sequence[query.Condition] = (), ids: Sequence[str] | None = None,
               tag: str | None = None) -> int:  # fmt: skip
    """How many runs table_rows would select with these filters and no limit."""
    return _scalar(path, *query.count_query("sqlite", conditions, ids, tag))


def _scalar(path: Path, sql: str, params: Sequence[Any] = ()) -> Any:
    conn = connect_read(path)
    try:
        row = conn.execute(sql, params).fetchone()
    except sqlite3.Error as exc:
        raise explain(exc, path) or exc from None
    finally:
        conn.close()
    return row[0] if row else None


def has_metric(path: Path, name: str) -> bool:
    """Whether any run in the store has a metric of this name (an index lookup)."""
    return _scalar(path, "SELECT 1 FROM metric WHERE name = ? LIMIT 1", (name,)) is not None


def metric_names(path: Path) -> list[str]:
    """Every metric name in the store."""
    conn = connect_read(path)
    try:
        return [r[0] for r in conn.execute(query.METRIC_NAMES)]
    except sqlite3.Error as exc:
        raise explain(exc, path) or exc from None
    finally:
        conn.close()


def is_empty(path: Path) -> bool:
    return _scalar(path, "SELECT 1 FROM run LIMIT 1") is None


SWEEP_COLUMNS = ("id", "name", "hypothesis", "baseline", "metric", "spec", "digest", "source", "command", "created_at")


def find_sweep(path: Path, key: str) -> dict[str, Any]:
    """A sweep by ID, name (the newest of that name) or unique ID prefix, as a dict."""
    key = query.sweep_key(key)
    conn = connect_read(path)
    try:
        cols = ", ".join(SWEEP_COLUMNS)
        rows = conn.execute(f"SELECT {cols} FROM sweep WHERE id = ?", (key,)).fetchall()
        rows = rows or conn.execute(f"SELECT {cols} FROM sweep WHERE name = ? ORDER BY created_at DESC LIMIT 1",
                                    (key,)).fetchall()  # fmt: skip
        rows = rows or conn.execute(f"SELECT {cols} FROM sweep WHERE id LIKE ? ESCAPE '\\' LIMIT 2",
                                    (query._like(key) + "%",)).fetchall()  # fmt: skip
    except sqlite3.Error as exc:
        raise explain(exc, path) or exc from None
    finally:
        conn.close()
    if len(rows) != 1:
        raise StoreError(f"no sweep {key!r}" + (" (ambiguous prefix)" if rows else "") + "; `grpo-lab sweep list`")
    return dict(zip(SWEEP_COLUMNS, rows[0], strict=True))
