"""Reads of many runs at once, for the report: one query per kind of record, whatever the number of runs.

The store's per-run methods (``Store.steps``, ``Store.samples``, ...) cost a session, a query and an ORM
object per row: a report of 1,000 runs spent about 12 s in them. These read the same tables through a plain
DB-API connection, read-only, never writing: the stdlib ``sqlite3`` for a SQLite file, psycopg 3 for a
PostgreSQL URL (no SQLAlchemy on either path). Each read opens its own connection, so reads can run in threads
side by side. Every function takes the store as a SQLite file's path or a ``Location``.

Curves and samples come back as JSON text, one array per run (the report embeds it as it is). SQLite writes
it itself (without decoding 100,000 step records in Python). Step metrics were written by ``json.dumps``,
which spells non-finite floats ``NaN`` / ``Infinity``: SQLite's JSON functions reject those, so rows
that hold either word are decoded in Python instead, and every non-finite value becomes ``null``. On
PostgreSQL, whose JSON types reject them too, every record is decoded in Python.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from itertools import groupby
from pathlib import Path
from typing import Any

from .location import Location, StoreError
from .sqlite_read import connect_read, lenient_text

RUN_COLUMNS = ("id", "kind", "exp_name", "status", "hypothesis", "expected", "criteria", "command", "resolved_command",
               "error", "tags", "model_name", "started_at", "duration_s", "verdict", "verdict_detail", "git_commit",
               "git_dirty")  # fmt: skip
_IDS = "SELECT value FROM json_each(?)"  # the run IDs, bound as one JSON array whatever their number
_NOT_STRICT = "(instr(metrics, 'NaN') > 0 OR instr(metrics, 'Infinity') > 0)"
# A sample's reward or advantage as the page shows it: 4 decimals, null unless finite (SQLite writes inf as Inf).
_SAMPLE_NUMBER = "round(IIF(abs({0}) <= 1.7976931348623157e308, {0}, NULL), 4)"
Source = Path | Location


def _location(source: Source) -> Location:
    return source if isinstance(source, Location) else Location(path=Path(source))


def _connect(location: Location):
    """A read-only DB-API connection to the store: sqlite3 for a file, psycopg for a PostgreSQL URL."""
    if location.path is not None:
        return connect_read(location.path)
    if location.backend != "postgresql":
        raise StoreError(f"the report reads SQLite files and PostgreSQL stores, not {location.backend} ({location})")
    try:
        import psycopg
    except ImportError:
        raise StoreError(f"{location.source}: {location} needs the Python package psycopg "
                         "(pip install 'grpo-lab[postgres]')") from None  # fmt: skip
    conninfo = "postgresql" + (location.url or "")[(location.url or "").index("://") :]  # libpq knows no "+psycopg"
    try:
        conn = psycopg.connect(conninfo)
        conn.read_only = True
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise StoreError(f"cannot reach the store {location} ({first}); check the host, port and that it "
                         "runs") from None  # fmt: skip
    return conn


def _in_ids(location: Location, run_ids: Sequence[str]) -> tuple[str, Any]:
    """``IN``/``= ANY`` over the run IDs, bound as one parameter whatever their number, and that parameter."""
    if location.path is not None:
        return f"IN ({_IDS})", json.dumps(list(run_ids))
    return "= ANY(%s)", list(run_ids)


def _query(location: Location, sql: str, params: Sequence[Any]):
    with closing(_connect(location)) as conn:
        if location.path is not None:  # sqlite3's own decoding, in C: a Python call per text value cost 0.1 s
            conn.text_factory = str
        try:
            return _fetch(conn, sql, params)
        except sqlite3.OperationalError as exc:  # bytes that are not UTF-8 (another program wrote them): read
            if not str(exc).startswith("Could not decode to UTF-8"):  # again, as U+FFFD, the reader's way
                raise
            conn.text_factory = lenient_text
            return _fetch(conn, sql, params)


def _fetch(conn, sql: str, params: Sequence[Any]):
    cursor = conn.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        cursor.close()


def runs(source: Source, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each run's columns that compare's rows leave out; tags decoded."""
    location = _location(source)
    ids, param = _in_ids(location, run_ids)
    rows = _query(location, f"SELECT {', '.join(RUN_COLUMNS)} FROM run WHERE id {ids}", [param])
    out = {}
    for row in rows:
        run = dict(zip(RUN_COLUMNS, row, strict=True))
        run["tags"] = json.loads(run["tags"])
        out[run["id"]] = run
    return out


def results(source: Source, run_ids: Sequence[str]) -> dict[str, list[tuple[str, str, str, str, int, int]]]:
    """Each run's accuracy records: (stage, split, dimension, group, correct, total)."""
    location = _location(source)
    ids, param = _in_ids(location, run_ids)
    rows = _query(
        location,
        f"SELECT run_id, stage, split, dimension, grp, correct, total FROM result WHERE run_id {ids} "
        "ORDER BY run_id, split, dimension, grp, stage",
        [param],
    )
    return {rid: [tuple(r[1:]) for r in group] for rid, group in groupby(rows, key=lambda r: r[0])}


def notes(source: Source, run_ids: Sequence[str]) -> dict[str, list[tuple[str, str, str]]]:
    """Each run's notes in order: (kind, text, created_at)."""
    location = _location(source)
    ids, param = _in_ids(location, run_ids)
    rows = _query(
        location, f"SELECT run_id, kind, text, created_at FROM note WHERE run_id {ids} ORDER BY run_id, seq", [param]
    )
    return {rid: [tuple(r[1:]) for r in group] for rid, group in groupby(rows, key=lambda r: r[0])}


def _finite(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else None


def _decoded_curves(rows, keys: Sequence[str]) -> dict[str, str]:
    """Curves from (run_id, step, JSON of [step, values] or None, metrics text or None) rows in run order: the
    metrics text, where given, is decoded here."""
    out = {}
    for rid, group in groupby(rows, key=lambda r: r[0]):
        parts = []
        for _, step, strict, loose in group:
            if loose is not None:
                metrics = json.loads(loose)
                strict = json.dumps([step, [_finite(metrics.get(k)) for k in keys]], allow_nan=False)
            parts.append(strict)
        out[rid] = "[" + ",".join(parts) + "]"
    return out


def curves_json(source: Source, run_ids: Sequence[str], keys: Sequence[str]) -> dict[str, str]:
    """Each run's curve as JSON text, ``[[step, [value of each key or null]], ...]``, in no particular order
    (SQLite builds each run's array; ordering inside an aggregate needs SQLite 3.44): sort by step."""
    location = _location(source)
    ids, param = _in_ids(location, run_ids)
    if location.path is None:
        sql = f"SELECT run_id, step, NULL, metrics FROM step WHERE run_id {ids} ORDER BY run_id, step"
        return _decoded_curves(_query(location, sql, [param]), keys)
    paths = [f'$."{k}"' for k in keys]
    # json_extract parses a record once for several paths and returns them as an array; for one path it
    # returns the bare value, so that case is wrapped.
    values = f"json_extract(metrics, {', '.join('?' for _ in paths)})"
    values = values if len(paths) > 1 else f"json_array({values})"
    params = [*paths, param]
    try:  # the common case: no record holds NaN or Infinity
        rows = _query(
            location,
            f"SELECT run_id, json_group_array(json_array(step, {values})) FROM step WHERE run_id {ids} GROUP BY run_id",
            params,
        )
        return dict(rows)
    except sqlite3.OperationalError as exc:
        if "malformed JSON" not in str(exc):
            raise
    # Checking every record for the two words up front costs about as much again; only stores that hold them
    # pay it, and only their records go through Python.
    rows = _query(
        location,
        f"SELECT run_id, step, CASE WHEN {_NOT_STRICT} THEN NULL ELSE json_array(step, {values}) END, "
        f"CASE WHEN {_NOT_STRICT} THEN metrics END FROM step WHERE run_id {ids} ORDER BY run_id, step",
        params,
    )
    return _decoded_curves(rows, keys)


def _sample_number(value: float | None) -> float | None:
    return round(value, 4) if value is not None and math.isfinite(value) else None


def samples_json(source: Source, run_ids: Sequence[str]) -> dict[str, str]:
    """Each run's sample completions as JSON text, ``[[step, idx, prompt, completion, reward, advantage,
    extracted], ...]`` in no particular order (sort by step and idx), reward and advantage rounded to 4 decimals,
    ``extracted`` the answer the run's task read from the completion (null where it found none, and for samples
    recorded before runs kept it: texts() gives what the report needs to work those out). SQLite builds it all,
    with no Python call per row."""
    location = _location(source)
    ids, param = _in_ids(location, run_ids)
    if location.path is None:
        rows = _query(location, "SELECT run_id, step, idx, prompt, completion, reward, advantage, extracted FROM "
                      f"sample WHERE run_id {ids} ORDER BY run_id", [param])  # fmt: skip
        out = {}
        for rid, group in groupby(rows, key=lambda r: r[0]):
            samples = [[step, idx, prompt, completion, _sample_number(reward), _sample_number(advantage), extracted]
                       for _, step, idx, prompt, completion, reward, advantage, extracted in group]  # fmt: skip
            out[rid] = json.dumps(samples, ensure_ascii=False, allow_nan=False)
        return out
    return dict(_query(
        location,
        f"SELECT run_id, json_group_array(json_array(step, idx, prompt, completion, "
        f"{_SAMPLE_NUMBER.format('reward')}, {_SAMPLE_NUMBER.format('advantage')}, extracted)) "
        f"FROM sample WHERE run_id {ids} GROUP BY run_id",
        [param],
    ))  # fmt: skip


def texts(source: Source, run_ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """The distinct prompts and the distinct completions of these runs' samples that carry no extracted answer
    (recorded before runs kept it, or where the task found none): the report works their answers out once per
    distinct text (they repeat a lot: 1,764 and 425 among a 1,000-run store's 400,000 samples)."""
    location = _location(source)
    ids, param = _in_ids(location, run_ids)
    distinct = "SELECT DISTINCT {} FROM sample WHERE run_id {} AND extracted IS NULL"
    return tuple(  # type: ignore[return-value]
        [r[0] for r in _query(location, distinct.format(col, ids), [param])] for col in ("prompt", "completion")
    )
