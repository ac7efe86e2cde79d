"""The query behind compare and runs, for SQLite and PostgreSQL: filtering, sorting and JSON extraction happen in
the database, with every value bound as a parameter. Standard library only.

A condition is (source, key, op, value): source "run" names a column, "config" a key of the config JSON, "metric"
a metric name. Column names and operators come from fixed lists; keys and values are bound. Rows come newest
first, or in the order asked for (missing values last).

Config values compare by type on both databases where it matters: a number with numbers (true/false count as
1/0, as SQLite's json_extract gives them), a word with text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from .location import StoreError

# Every status a run row can have (the store's to check, compare's and sweep's to count); FINISHED is the one
# with results.
STATUSES = ("queued", "running", "finished", "failed", "interrupted", "crashed")
FINISHED = "finished"
TABLE_COLUMNS = ("id", "kind", "exp_name", "status", "model_name", "started_at", "duration_s", "config",
                 "hypothesis", "verdict", "verdict_detail", "suites_disjoint", "sweep_id", "arm",
                 "superseded", "git_dirty")  # fmt: skip
OPERATORS = ("=", "!=", ">", ">=", "<", "<=")
DIALECTS = ("sqlite", "postgresql")
Condition = tuple[str, str, str, Any]


class _Builder:
    def __init__(self, dialect: str):
        if dialect not in DIALECTS:
            raise StoreError(f"compare and runs read SQLite and PostgreSQL stores, not {dialect}")
        self.dialect = dialect
        self.ph = "?" if dialect == "sqlite" else "%s"
        self.params: list[Any] = []

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return self.ph

    def field(self, source: str, key: str, value: Any = None, sorting: bool = False) -> str:
        """SQL for a run column, a config key or a metric. ``value`` is what it is compared with (its type
        chooses how a config value is read on PostgreSQL)."""
        if source == "run":
            if key not in TABLE_COLUMNS:
                raise StoreError(f"unknown run column {key!r}")
            return f"run.{key}"
        if source == "metric":
            return f"(SELECT value FROM metric WHERE metric.run_id = run.id AND metric.name = {self.bind(key)})"
        if source != "config":
            raise StoreError(f"unknown field source {source!r}")
        if self.dialect == "sqlite":
            path = '$."' + key + '"'
            return f"json_extract(run.config, {self.bind(path)})"

        def item() -> str:  # the value as jsonb; each use binds the key again (positional parameters)
            return f"(CAST(run.config AS jsonb) -> {self.bind(key)})"

        if sorting:  # jsonb orders numbers numerically and text as text; JSON null counts as missing
            return f"NULLIF({item()}, 'null'::jsonb)"
        if isinstance(value, str):
            return f"(CASE WHEN jsonb_typeof({item()}) = 'string' THEN {item()} #>> '{{}}' END)"
        return (f"(CASE jsonb_typeof({item()}) WHEN 'number' THEN CAST({item()} #>> '{{}}' AS double precision) "
                f"WHEN 'boolean' THEN CASE WHEN {item()} = 'true'::jsonb THEN 1.0 ELSE 0.0 END END)")  # fmt: skip


def _where(q: _Builder, dialect: str, conditions: Sequence[Condition], ids: Sequence[str] | None,
           tag: str | None) -> str:  # fmt: skip
    """The WHERE clause of these filters (empty when there are none), its values bound in ``q``."""
    clauses = []
    for source, key, op, value in conditions:
        if op not in OPERATORS:
            raise StoreError(f"unknown operator {op!r}")
        expr = q.field(source, key, value)
        clause = f"{expr} {op} {q.bind(value)}"
        if source == "config" and dialect == "sqlite":
            # SQLite orders every text above every number: compare a number with numbers, a word with text
            kinds = "'text'" if isinstance(value, str) else "'integer', 'real'"
            clause = f"({clause} AND typeof({q.field(source, key)}) IN ({kinds}))"
        clauses.append(clause)
    if ids:
        clauses.append("(" + " OR ".join(f"run.id LIKE {q.bind(_like(i) + '%')} ESCAPE '\\'" for i in ids) + ")")
    if tag is not None:
        clauses.append(f"run.tags LIKE {q.bind('%' + _like(json.dumps(tag)) + '%')} ESCAPE '\\'")
    return " WHERE " + " AND ".join(clauses) if clauses else ""


def count_query(
    dialect: str, conditions: Sequence[Condition] = (), ids: Sequence[str] | None = None, tag: str | None = None
) -> tuple[str, list[Any]]:
    """How many runs these filters select (what a page of compare leaves out is counted, not fetched)."""
    q = _Builder(dialect)
    return "SELECT count(*) FROM run" + _where(q, dialect, conditions, ids, tag), q.params


def sweep_key(key: str) -> str:
    """A sweep ID, prefix or name as given; a blank one would be a prefix of every sweep, so it is refused."""
    if not key.strip():
        raise StoreError("the sweep is empty; give its ID, an ID prefix or its name (`grpo-lab sweep list`)")
    return key


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def runs_query(
    dialect: str,
    conditions: Sequence[Condition] = (),
    ids: Sequence[str] | None = None,
    tag: str | None = None,
    last: int | None = None,
    order: tuple[str, str, bool] | None = None,
    limit: int | None = None,
    pivot: Sequence[str] = (),
) -> tuple[str, list[Any]]:
    """The SELECT of TABLE_COLUMNS, then one column per metric named in ``pivot``, for these filters, and its
    parameters (``?`` for SQLite, ``%s`` for psycopg)."""
    q = _Builder(dialect)
    columns = [f"run.{c}" for c in TABLE_COLUMNS] + [q.field("metric", name) for name in pivot]
    sql = f"SELECT {', '.join(columns)} FROM run"
    if order is not None and order[0] == "metric":  # one key lookup per run, however it is sorted
        sql += f" LEFT JOIN metric AS sorted_by ON sorted_by.run_id = run.id AND sorted_by.name = {q.bind(order[1])}"
    sql += _where(q, dialect, conditions, ids, tag)
    if order is not None:
        if order[0] == "metric":
            first = again = "sorted_by.value"
        else:
            first, again = q.field(order[0], order[1], sorting=True), q.field(order[0], order[1], sorting=True)
        sql += f" ORDER BY ({first}) IS NULL, {again} {'DESC' if order[2] else 'ASC'}, run.started_at DESC, run.id"
    else:
        sql += " ORDER BY run.started_at DESC, run.id"
    if last or limit:
        sql += f" LIMIT {q.bind(int(last or limit))}"
    return sql, q.params


IDS_AT_ONCE = 500  # selections up to this size fetch their metrics by ID; larger ones through the runs query


def metrics_query(
    dialect: str, runs_sql: str, runs_params: list[Any], ids: Sequence[str], names: Sequence[str] | None = None
) -> tuple[str, list[Any]]:
    """The metrics of the runs ``ids`` (which ``runs_sql`` selected), only those named in ``names`` when given;
    found through the (run_id, name) key, whatever the number of names."""
    ph = "?" if dialect == "sqlite" else "%s"
    if len(ids) <= IDS_AT_ONCE:
        sql, params = (
            f"SELECT run_id, name, value FROM metric WHERE run_id IN ({', '.join(ph for _ in ids)})",
            list(ids),
        )
    else:
        sql = f"SELECT run_id, name, value FROM metric WHERE run_id IN (SELECT id FROM ({runs_sql}) AS selected)"
        params = list(runs_params)
    if names is None:
        return sql, params
    names = sorted(names)
    if dialect == "postgresql":
        return sql + " AND name = ANY(%s)", [*params, names]
    return sql + f" AND +name IN ({', '.join('?' for _ in names)})", params + names  # "+": not the (name, value) index


# Every distinct metric name, one index seek per name (a loose index scan on (name, value)), in both databases.
METRIC_NAMES = """WITH RECURSIVE names(name) AS (
    SELECT MIN(name) FROM metric
    UNION ALL SELECT (SELECT MIN(m.name) FROM metric m WHERE m.name > names.name) FROM names WHERE name IS NOT NULL
) SELECT name FROM names WHERE name IS NOT NULL"""


def table_rows(
    dialect: str,
    execute: Callable[[str, list[Any]], Sequence[Sequence[Any]]],
    conditions: Sequence[Condition] = (),
    ids: Sequence[str] | None = None,
    tag: str | None = None,
    last: int | None = None,
    order: tuple[str, str, bool] | None = None,
    limit: int | None = None,
    names: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Runs as dicts with their ``config`` decoded and their ``metrics`` (only those in ``names``, when given);
    ``execute(sql, params)`` runs a query on the store. Every run of a large selection gets its named metrics
    as columns of the one query (one key lookup each); a top-N selection gets them afterwards, by ID."""
    pivot = sorted(names) if names is not None and not (last or limit) else []
    sql, params = runs_query(dialect, conditions, ids, tag, last, order, limit, pivot)
    rows = execute(sql, params)
    metric_rows: Sequence[Sequence[Any]] = []
    if rows and not pivot:
        metric_rows = execute(*metrics_query(dialect, sql, params, [r[0] for r in rows], names))
    return decode(rows, metric_rows, pivot)


def decode(rows: Sequence[Sequence[Any]], metric_rows=(), pivot: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Rows of TABLE_COLUMNS (then the ``pivot`` metrics) as dicts with ``config`` decoded and ``metrics``
    ({name: value}) attached, from the pivot columns or from (run_id, name, value) rows."""
    metrics: dict[str, dict[str, float]] = {}
    for run_id, name, value in metric_rows:
        metrics.setdefault(run_id, {})[name] = value
    loads, n = json.loads, len(TABLE_COLUMNS)
    out = []
    for row in rows:
        d = dict(zip(TABLE_COLUMNS, row[:n], strict=True))
        d["config"] = loads(d["config"])
        d["suites_disjoint"] = bool(d["suites_disjoint"])
        d["git_dirty"] = bool(d["git_dirty"])
        if pivot:
            d["metrics"] = {name: v for name, v in zip(pivot, row[n:], strict=True) if v is not None}
        else:
            d["metrics"] = metrics.get(d["id"], {})
        out.append(d)
    return out
