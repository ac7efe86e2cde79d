"""Read-only access to SQLite stores with the stdlib ``sqlite3``: fast to import, never writes.

Used to refuse files that are not grpo-lab stores before anything touches them, and by compare,
whose whole command must stay well under a second over 10,000 runs.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..errors import GrpoLabError

# The schema steps this grpo-lab knows, in order; db.py registers a migration for each and checks the list.
KNOWN_MIGRATIONS = ("m001_initial", "m002_predictions", "m003_held_out_ops")
STALE_AFTER = timedelta(minutes=5)  # a running run whose heartbeat is older than this is presumed dead
TABLE_COLUMNS = ("id", "kind", "exp_name", "status", "model_name", "started_at", "duration_s", "config",
                 "hypothesis")  # fmt: skip
OPERATORS = ("=", "!=", ">", ">=", "<", "<=")


class StoreError(GrpoLabError):
    pass


DEFAULT_DB = "grpo_lab.db"


def default_url() -> str:
    """--db, else $GRPO_LAB_DB, else ./grpo_lab.db; a bare path means a SQLite file."""
    value = os.environ.get("GRPO_LAB_DB") or DEFAULT_DB
    return value if "://" in value else f"sqlite:///{value}"


def sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        return Path(path) if path and path != ":memory:" else None
    return None


def _connect_ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


def applied_migrations(path: Path) -> set[str] | None:
    """The migrations recorded in a SQLite file; None for an empty file. Refuses files that are not stores."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    try:
        conn = _connect_ro(path)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            applied = {r[0] for r in conn.execute("SELECT name FROM _migrations")} if "_migrations" in tables else None
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        raise StoreError(f"{path} is not a grpo-lab store (not an SQLite database); point --db elsewhere") from None
    if applied is None and tables:
        raise StoreError(f"{path} is an SQLite database but not a grpo-lab store; point --db elsewhere")
    if applied is not None:
        check_known(applied, str(path))
    return applied


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


def ready_to_read(path: Path) -> bool:
    """True when a plain read is enough: the schema is current and no dead run waits to be marked crashed."""
    applied = applied_migrations(path)
    if applied != set(KNOWN_MIGRATIONS):
        return False
    conn = _connect_ro(path)
    try:
        running = conn.execute(
            "SELECT host, pid, COALESCE(heartbeat_at, started_at) FROM run WHERE status = 'running'"
        ).fetchall()
    finally:
        conn.close()
    here = socket.gethostname()
    return not any(presumed_dead(host, pid, beat, here) for host, pid, beat in running)


def _field(source: str, key: str) -> tuple[str, list[str]]:
    """SQL for a run column or a key of a JSON column; column names are checked, JSON keys are bound."""
    if source == "run":
        if key not in TABLE_COLUMNS:
            raise StoreError(f"unknown run column {key!r}")
        return key, []
    if source in ("config", "summary"):
        return f"json_extract({source}, ?)", [f'$."{key}"']
    raise StoreError(f"unknown field source {source!r}")


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def table_rows(
    path: Path,
    conditions: Sequence[tuple[str, str, str, Any]] = (),
    ids: Sequence[str] | None = None,
    tag: str | None = None,
    last: int | None = None,
    summary_keys: Sequence[str] = (),
    order: tuple[str, str, bool] | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Runs as dicts, oldest first, filtered in SQL with bound values.

    A condition is (source, key, op, value): source "run" names a column, "config" or "summary" a key
    of that JSON column. Column names and operators come from fixed lists; keys and values are bound.
    Each row's ``summary`` holds only ``summary_keys``: SQLite extracts them, which is much faster than
    decoding whole summaries in Python. ``order`` (source, key, descending) with ``limit`` sorts in SQL,
    missing values last, and returns rows in that order; otherwise rows come oldest first.
    """
    clauses, params = [], []
    for source, key, op, value in conditions:
        if op not in OPERATORS:
            raise StoreError(f"unknown operator {op!r}")
        expr, expr_params = _field(source, key)
        clauses.append(f"{expr} {op} ?")
        params += [*expr_params, value]
    if ids:
        clauses.append("(" + " OR ".join("id LIKE ? ESCAPE '\\'" for _ in ids) + ")")
        params += [_like(i) + "%" for i in ids]
    if tag is not None:
        clauses.append("tags LIKE ? ESCAPE '\\'")
        params.append("%" + _like(json.dumps(tag)) + "%")
    # One json_extract with several paths parses each summary once and returns a JSON array
    # (a single path would return a bare value, hence the padding path).
    paths = [*summary_keys, "-"] if len(summary_keys) == 1 else list(summary_keys)
    headline = ", ".join("?" for _ in paths) if paths else "'$.-', '$.-'"
    sql = f"SELECT {', '.join(TABLE_COLUMNS)}, json_extract(summary, {headline}) FROM run"
    params = [*(f'$."{k}"' for k in paths), *params]
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    if order is not None:
        expr, expr_params = _field(order[0], order[1])
        sql += f" ORDER BY ({expr}) IS NULL, {expr} {'DESC' if order[2] else 'ASC'}, started_at DESC, id"
        params += expr_params * 2
    else:
        sql += " ORDER BY started_at DESC, id"
    if last or limit:
        sql += " LIMIT ?"
        params.append(int(last or limit))
    conn = _connect_ro(path)
    try:
        rows = conn.execute(sql, params).fetchall()
    finally:
        conn.close()
    loads = json.loads
    out = []
    for row in rows if order is not None else reversed(rows):
        d = dict(zip(TABLE_COLUMNS, row[:-1], strict=True))
        d["config"] = loads(d["config"])
        d["summary"] = dict(zip(summary_keys, loads(row[-1]), strict=False))
        out.append(d)
    return out
