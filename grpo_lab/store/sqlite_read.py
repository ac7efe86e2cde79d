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
KNOWN_MIGRATIONS = ("m001_initial", "m002_predictions", "m003_held_out_ops", "m004_metrics", "m005_sweeps")
STALE_AFTER = timedelta(minutes=5)  # a running run whose heartbeat is older than this is presumed dead
TABLE_COLUMNS = ("id", "kind", "exp_name", "status", "model_name", "started_at", "duration_s", "config",
                 "hypothesis", "verdict", "verdict_detail", "suites_disjoint", "sweep_id", "arm",
                 "superseded")  # fmt: skip
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
    """SQL for a run column, a key of the config JSON, or a metric; column names are checked, keys are bound."""
    if source == "run":
        if key not in TABLE_COLUMNS:
            raise StoreError(f"unknown run column {key!r}")
        return f"run.{key}", []
    if source == "config":
        return "json_extract(run.config, ?)", [f'$."{key}"']
    if source == "metric":
        return "(SELECT value FROM metric WHERE metric.run_id = run.id AND metric.name = ?)", [key]
    raise StoreError(f"unknown field source {source!r}")


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def table_rows(
    path: Path,
    conditions: Sequence[tuple[str, str, str, Any]] = (),
    ids: Sequence[str] | None = None,
    tag: str | None = None,
    last: int | None = None,
    order: tuple[str, str, bool] | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Runs as dicts with their ``config`` decoded and their ``metrics``, filtered in SQL with bound values.

    A condition is (source, key, op, value): source "run" names a column, "config" a key of the config
    JSON, "metric" a metric name. Column names and operators come from fixed lists; keys and values are
    bound. ``order`` (source, key, descending) with ``limit`` sorts in SQL, missing values last, and returns
    rows in that order; otherwise rows come oldest first.
    """
    clauses, params = [], []
    for source, key, op, value in conditions:
        if op not in OPERATORS:
            raise StoreError(f"unknown operator {op!r}")
        expr, expr_params = _field(source, key)
        clauses.append(f"{expr} {op} ?")
        params += [*expr_params, value]
    if ids:
        clauses.append("(" + " OR ".join("run.id LIKE ? ESCAPE '\\'" for _ in ids) + ")")
        params += [_like(i) + "%" for i in ids]
    if tag is not None:
        clauses.append("run.tags LIKE ? ESCAPE '\\'")
        params.append("%" + _like(json.dumps(tag)) + "%")
    sql = f"SELECT {', '.join('run.' + c for c in TABLE_COLUMNS)} FROM run"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    if order is not None:
        expr, expr_params = _field(order[0], order[1])
        sql += f" ORDER BY ({expr}) IS NULL, {expr} {'DESC' if order[2] else 'ASC'}, run.started_at DESC, run.id"
        params += expr_params * 2
    else:
        sql += " ORDER BY run.started_at DESC, run.id"
    if last or limit:
        sql += " LIMIT ?"
        params.append(int(last or limit))
    conn = _connect_ro(path)
    try:
        rows = conn.execute(sql, params).fetchall()
        metrics = _metrics(conn, sql, params, len(rows))
    finally:
        conn.close()
    loads = json.loads
    out = []
    for row in rows if order is not None else reversed(rows):
        d = dict(zip(TABLE_COLUMNS, row, strict=True))
        d["config"] = loads(d["config"])
        d["metrics"] = metrics.get(d["id"], {})
        out.append(d)
    return out


def _metrics(conn: sqlite3.Connection, runs_sql: str, params: list[Any], n: int) -> dict[str, dict[str, float]]:
    """The metrics of the runs ``runs_sql`` selects, in one query."""
    out: dict[str, dict[str, float]] = {}
    if not n:
        return out
    sql = f"SELECT run_id, name, value FROM metric WHERE run_id IN (SELECT id FROM ({runs_sql}))"
    for run_id, name, value in conn.execute(sql, params):
        out.setdefault(run_id, {})[name] = value
    return out


def has_metric(path: Path, name: str) -> bool:
    """Whether any run in the store has a metric of this name (an index lookup)."""
    conn = _connect_ro(path)
    try:
        return conn.execute("SELECT 1 FROM metric WHERE name = ? LIMIT 1", (name,)).fetchone() is not None
    finally:
        conn.close()


SWEEP_COLUMNS = ("id", "name", "hypothesis", "baseline", "metric", "spec", "digest", "source", "command", "created_at")


def find_sweep(path: Path, key: str) -> dict[str, Any]:
    """A sweep by ID, name (the newest of that name) or unique ID prefix, as a dict."""
    conn = _connect_ro(path)
    try:
        cols = ", ".join(SWEEP_COLUMNS)
        rows = conn.execute(f"SELECT {cols} FROM sweep WHERE id = ?", (key,)).fetchall()
        rows = rows or conn.execute(f"SELECT {cols} FROM sweep WHERE name = ? ORDER BY created_at DESC LIMIT 1",
                                    (key,)).fetchall()  # fmt: skip
        rows = rows or conn.execute(f"SELECT {cols} FROM sweep WHERE id LIKE ? ESCAPE '\\' LIMIT 2",
                                    (_like(key) + "%",)).fetchall()  # fmt: skip
    finally:
        conn.close()
    if len(rows) != 1:
        raise StoreError(f"no sweep {key!r}" + (" (ambiguous prefix)" if rows else "") + "; `grpo-lab sweep list`")
    return dict(zip(SWEEP_COLUMNS, rows[0], strict=True))
