"""Read-only access to PostgreSQL stores with psycopg alone: no SQLAlchemy, no SQLModel, so that `runs` and
`compare` on a team's server start about as fast as on a SQLite file. The same query builder (query.py) as the
SQLite reader; what sqlite_read is to a file, this is to a server.

A command that only reads never writes here: its session is read-only (``default_transaction_read_only``), it
never creates a table or migrates (an empty database is "no grpo-lab store", an older one is refused with what
to do), and it marks a dead run crashed only where its role may update runs (checked first, so a role that may
only SELECT never attempts a write), silently leaving it to the next writer where it may not.

``explain`` turns the errors of a server (through psycopg or SQLAlchemy) into one line that tells apart an
unreachable host or port, failed authentication, a missing database, a permission the role lacks, a database
that is not a grpo-lab store and one written by a newer grpo-lab.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

from . import query
from .location import Location, NoStore, StoreError, StoreUnreachable
from .sqlite_read import KNOWN_MIGRATIONS, SWEEP_COLUMNS, check_known, crash_values, presumed_dead

CONNECT_TIMEOUT_S = 10

# SQLSTATEs a user can act on (https://www.postgresql.org/docs/current/errcodes-appendix.html).
STATES = {
    "53100": "the disk of the PostgreSQL server is full",
    "42501": "permission denied: the role in the URL may not do this (ask the database's owner for the grant)",
    "25006": "the server only allows reading (read-only transaction)",
    "28P01": "authentication failed; put the password in ~/.pgpass or $PGPASSWORD, or in the URL",
    "28000": "the server refused the role (check the user name in the URL and pg_hba.conf)",
    "3D000": "the database does not exist; create it first (createdb NAME)",
    "55P03": "a lock could not be taken in time",
    "40P01": "a deadlock was detected; try again",
}
# The server went away or is not there yet: class 08 (connection exception), and the server shutting down
# (57P01 admin_shutdown, 57P02 crash_shutdown) or starting up (57P03).
UNREACHABLE_STATES = ("57P01", "57P02", "57P03")


def conninfo(location: Location) -> str:
    """The libpq URI of a store's URL (SQLAlchemy's ``postgresql+psycopg://`` less its driver)."""
    return "postgresql://" + (location.url or "").split("://", 1)[1]


def explain(error: BaseException, location: Location) -> StoreError | None:
    """A one-line StoreError for a server's error the user can act on (StoreUnreachable when the server cannot be
    reached for now); None for anything else, which is a bug and keeps its traceback."""
    state = getattr(error, "sqlstate", None)
    text = str(error).strip()
    first = (text.splitlines() or [""])[0]
    low = text.lower()
    if state in STATES:
        return StoreError(f"{location}: {STATES[state]} ({first})")
    if state in UNREACHABLE_STATES or (state or "").startswith("08"):
        return StoreUnreachable(f"lost the store {location} ({first}); the server stopped or is restarting")
    if state is not None or type(error).__name__ != "OperationalError":
        return None
    # a connection that failed: libpq's message is all there is (no SQLSTATE before the session exists)
    if "password authentication failed" in low or "no password supplied" in low or "authentication failed" in low:
        return StoreError(f"{location}: authentication failed for the role in the URL; check the password "
                          f"(~/.pgpass, $PGPASSWORD or the URL) ({first})")  # fmt: skip
    if 'database "' in low and "does not exist" in low:
        return StoreError(f"{location}: the database does not exist; create it first (createdb NAME) or fix the "
                          f"URL ({first})")  # fmt: skip
    if 'role "' in low and "does not exist" in low:
        return StoreError(f"{location}: the server has no such role; check the user name in the URL ({first})")
    if "permission denied" in low:
        return StoreError(f"{location}: permission denied: the role may not connect to this database; ask its "
                          f"owner for GRANT CONNECT ({first})")  # fmt: skip
    if "pg_hba.conf" in low:
        return StoreError(f"{location}: the server refused this connection (pg_hba.conf) ({first})")
    if "server closed the connection" in low or "consuming input failed" in low or "terminating connection" in low:
        return StoreUnreachable(f"lost the store {location} ({first}); the server stopped or is restarting")
    return StoreUnreachable(f"cannot reach the store {location} ({first}); check the host, port and that it runs")


def connect(location: Location, read_only: bool = True):
    """A psycopg connection (autocommit); ``read_only``: a session in which the server refuses every write."""
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
    except ModuleNotFoundError as missing:
        raise StoreError(f"{location.source}: {location} needs the Python package {missing.name} "
                         "(pip install 'grpo-lab[postgres]')") from None  # fmt: skip
    try:
        params = conninfo_to_dict(conninfo(location))
    except psycopg.ProgrammingError as bad:
        raise StoreError(f"{location.source}: {location} is not a usable database URL ({bad})") from None
    params.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    params.setdefault("application_name", "grpo-lab")
    if read_only:
        params["options"] = f"{params.get('options') or ''} -c default_transaction_read_only=on".strip()
    try:
        return psycopg.connect(**params, autocommit=True)
    except psycopg.Error as exc:
        raise explain(exc, location) or exc from None


class Reader:
    """One read-only session on a store's server: checks that it holds a grpo-lab store this grpo-lab can read,
    then reads runs and sweeps with the query builder SQLite's reader uses."""

    def __init__(self, location: Location):
        self.location = location
        self.conn = connect(location)

    def close(self) -> None:
        self.conn.close()

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        import psycopg

        try:
            return self.conn.execute(sql, params or None).fetchall()
        except psycopg.Error as exc:
            raise explain(exc, self.location) or exc from None

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self.rows(sql, params)
        return rows[0][0] if rows else None

    # -- is this a store? ------------------------------------------------------------------------------------
    def applied(self) -> set[str]:
        """The migrations recorded in the database; refuses an empty database, another application's and a
        newer grpo-lab's."""
        ours, any_table = self.rows(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = "
            "c.relnamespace WHERE n.nspname = current_schema() AND c.relname = '_migrations'), "
            "EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f'))"
        )[0]
        if not ours and not any_table:
            raise NoStore(f"no grpo-lab store in this database ({self.location}, from {self.location.source}); "
                             "check --db or $GRPO_LAB_DB (grpo-lab run creates one)")  # fmt: skip
        if not ours:
            raise StoreError(f"{self.location} holds tables but is not a grpo-lab store; point --db elsewhere")
        applied = {r[0] for r in self.rows("SELECT name FROM _migrations")}
        check_known(applied, str(self.location))
        return applied

    def prepare(self) -> list[str]:
        """Make sure a plain read can go ahead, without writing: the store exists and is up to date (an older one
        is refused: readers never migrate), and its dead runs are marked crashed where this role may update runs.
        Returns notices (none: where it may not, the next command that writes marks them)."""
        pending = [name for name in KNOWN_MIGRATIONS if name not in self.applied()]
        if pending:
            raise StoreError(
                f"{self.location} was written by an older grpo-lab and needs an upgrade ({', '.join(pending)}); "
                "a command that records (grpo-lab run, eval or note) upgrades it, with a role that may create tables"
            )
        self.reap_if_allowed()
        return []

    def reap_if_allowed(self) -> list[str]:
        """Mark the runs whose process is gone crashed, if this role may update runs (checked, never tried)."""
        running = self.rows("SELECT id, host, pid, COALESCE(heartbeat_at, started_at), started_at, output_dir "
                            "FROM run WHERE status = 'running'")  # fmt: skip
        here = socket.gethostname()
        dead = [(row, why) for row in running if (why := presumed_dead(row[1], row[2], row[3], here))]
        if not dead or not self.scalar("SELECT has_table_privilege('run', 'UPDATE') AND NOT pg_is_in_recovery()"):
            return []
        writer = connect(self.location, read_only=False)
        try:
            for (run_id, _, _, beat, started_at, output_dir), why in dead:
                values = crash_values(why, beat, started_at, output_dir)
                writer.execute(
                    "UPDATE run SET status = %s, error = %s, finished_at = %s, duration_s = %s "
                    "WHERE id = %s AND status = 'running' AND COALESCE(heartbeat_at, started_at) = %s",
                    (values["status"], values["error"], values["finished_at"], values["duration_s"], run_id, beat),
                )
        except Exception as exc:
            raise explain(exc, self.location) or exc from None
        finally:
            writer.close()
        return [run_id for (run_id, *_), _ in dead]

    # -- compare's and runs' rows ----------------------------------------------------------------------------
    def table_rows(self, conditions=(), ids=None, tag=None, last=None, order=None, limit=None,
                   names=None) -> list[dict[str, Any]]:  # fmt: skip
        return query.table_rows("postgresql", self.rows, conditions, ids, tag, last, order, limit, names)

    def count_rows(self, conditions=(), ids=None, tag=None) -> int:
        return self.scalar(*query.count_query("postgresql", conditions, ids, tag))

    def has_metric(self, name: str) -> bool:
        return self.scalar("SELECT 1 FROM metric WHERE name = %s LIMIT 1", (name,)) is not None

    def metric_names(self) -> list[str]:
        return [r[0] for r in self.rows(query.METRIC_NAMES)]

    def is_empty(self) -> bool:
        return self.scalar("SELECT 1 FROM run LIMIT 1") is None

    def find_sweep(self, key: str) -> dict[str, Any]:
        """A sweep by ID, name (the newest of that name) or unique ID prefix, as a dict."""
        key = query.sweep_key(key)
        cols = ", ".join(SWEEP_COLUMNS)
        rows = self.rows(f"SELECT {cols} FROM sweep WHERE id = %s", (key,))
        rows = rows or self.rows(f"SELECT {cols} FROM sweep WHERE name = %s ORDER BY created_at DESC LIMIT 1", (key,))
        rows = rows or self.rows(f"SELECT {cols} FROM sweep WHERE id LIKE %s ESCAPE '\\' LIMIT 2",
                                 (query._like(key) + "%",))  # fmt: skip
        if len(rows) != 1:
            raise StoreError(f"no sweep {key!r}" + (" (ambiguous prefix)" if rows else "") + "; `grpo-lab sweep list`")
        return dict(zip(SWEEP_COLUMNS, rows[0], strict=True))


def prepare(location: Location) -> list[str]:
    """What a reading command does before it reads through the full store (SQLAlchemy): the same checks as
    Reader.prepare, on a session of their own."""
    reader = Reader(location)
    try:
        return reader.prepare()
    finally:
        reader.close()
