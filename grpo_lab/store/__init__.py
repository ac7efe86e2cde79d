"""The run store, the only part of grpo-lab that speaks SQL.

- ``location``: where the store is (``--db``, ``$GRPO_LAB_DB``, ``./grpo_lab.db``): a file path or a database URL.
- ``db``: SQLModel tables, migrations, writes and reads (SQLAlchemy; SQLite files and PostgreSQL).
- ``sqlite_read``: read-only checks and compare's query over SQLite files with the stdlib ``sqlite3``,
  so that commands which only read (compare, runs) start without importing SQLAlchemy, SQLModel or pydantic.
- ``pg_read``: the same over PostgreSQL with psycopg alone, in read-only sessions that never create, migrate or
  write what the role may not.
- ``spool``: a run's records kept in a local file while the store is unreachable, written in order when it
  returns, or later by ``grpo-lab sync``.
- ``query``: the SQL of compare and runs, for SQLite and PostgreSQL.

This file imports neither SQLAlchemy nor SQLModel, so importing ``grpo_lab.store.sqlite_read`` stays light.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from .location import Location, locate


class Rows:
    """The rows compare and runs read from one store, filtered and sorted in the database: a SQLite file through
    the stdlib reader (after any upgrade or crash marking that is due and allowed), a PostgreSQL server through
    psycopg alone (pg_read), another database through the full store. Call it like ``sqlite_read.table_rows``
    without the path; ``notices`` says what was left undone."""

    def __init__(self, db: str | Location | None = None):
        self.location = db if isinstance(db, Location) else locate(db)
        path = self.location.path
        if path is not None:
            from . import sqlite_read

            self.notices = sqlite_read.prepare(path)
            self._rows = partial(sqlite_read.table_rows, path)
            self._has_metric = partial(sqlite_read.has_metric, path)
            self._is_empty = partial(sqlite_read.is_empty, path)
            self._metric_names = partial(sqlite_read.metric_names, path)
            self._count = partial(sqlite_read.count_rows, path)
        elif self.location.backend == "postgresql":
            from . import pg_read

            reader = pg_read.Reader(self.location)
            self.notices = reader.prepare()
            self._rows, self._has_metric, self._is_empty = reader.table_rows, reader.has_metric, reader.is_empty
            self._metric_names, self._count = reader.metric_names, reader.count_rows
            self._find_sweep = reader.find_sweep
        else:
            from .db import Store

            store = Store(self.location, readonly=True)
            self.notices = store.notices
            self._rows, self._has_metric, self._is_empty = store.table_rows, store.has_metric, store.is_empty
            self._metric_names = store.metric_names
            self._count = store.count_rows

    def __call__(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return self._rows(*args, **kwargs)

    def has_metric(self, name: str) -> bool:
        return self._has_metric(name)

    def is_empty(self) -> bool:
        return self._is_empty()

    def count(self, conditions=(), ids=None, tag=None) -> int:
        """How many runs these filters select (as the call would give them with no limit)."""
        return self._count(conditions, ids, tag)

    def metric_names(self) -> list[str]:
        """Every metric name in the store (compare fetches only those it shows or diagnoses)."""
        return self._metric_names()

    def find_sweep(self, key: str) -> dict[str, Any]:
        """A sweep (ID, name or ID prefix) as a dict of its columns."""
        path = self.location.path
        if path is not None:
            from . import sqlite_read

            return sqlite_read.find_sweep(path, key)
        if hasattr(self, "_find_sweep"):
            return self._find_sweep(key)
        from .db import Store

        record = Store(self.location, readonly=True).find_sweep(key)
        return {k: getattr(record, k) for k in record.model_fields}
