"""Reads of many runs at once, for the report: one query per kind of record, whatever the number of runs.

The store's per-run methods (``Store.steps``, ``Store.samples``, ...) cost a session, a query and an ORM
object per row: a report of 1,000 runs spent about 12 s in them. These read the same tables of a SQLite
store with the stdlib ``sqlite3``, read-only, never writing.

Curves and samples come back as JSON text that SQLite writes, one array per run (the report embeds it
as it is, without decoding 100,000 step records in Python). Step metrics were written by ``json.dumps``,
which spells non-finite floats ``NaN`` / ``Infinity``: SQLite's JSON functions reject those, so rows
that hold either word are decoded in Python instead, and every non-finite value becomes ``null``.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

from .sqlite_read import connect_read

RUN_COLUMNS = ("id", "kind", "exp_name", "status", "hypothesis", "expected", "criteria", "command", "resolved_command",
               "error", "tags", "model_name", "started_at", "duration_s", "verdict", "verdict_detail", "git_commit",
               "git_dirty")  # fmt: skip
_IDS = "SELECT value FROM json_each(?)"  # the run IDs, bound as one JSON array whatever their number
_NOT_STRICT = "(instr(metrics, 'NaN') > 0 OR instr(metrics, 'Infinity') > 0)"
# A sample's reward or advantage as the page shows it: 4 decimals, null unless finite (SQLite writes inf as Inf).
_SAMPLE_NUMBER = "round(IIF(abs({0}) <= 1.7976931348623157e308, {0}, NULL), 4)"


def _query(path: Path, sql: str, params: Sequence[Any]):
    conn = connect_read(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def runs(path: Path, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each run's columns that compare's rows leave out; tags decoded."""
    rows = _query(path, f"SELECT {', '.join(RUN_COLUMNS)} FROM run WHERE id IN ({_IDS})", [json.dumps(run_ids)])
    out = {}
    for row in rows:
        run = dict(zip(RUN_COLUMNS, row, strict=True))
        run["tags"] = json.loads(run["tags"])
        out[run["id"]] = run
    return out


def results(path: Path, run_ids: Sequence[str]) -> dict[str, list[tuple[str, str, str, str, int, int]]]:
    """Each run's accuracy records: (stage, split, dimension, group, correct, total)."""
    rows = _query(
        path,
        f"SELECT run_id, stage, split, dimension, grp, correct, total FROM result WHERE run_id IN ({_IDS}) "
        "ORDER BY run_id, split, dimension, grp, stage",
        [json.dumps(run_ids)],
    )
    return {rid: [r[1:] for r in group] for rid, group in groupby(rows, key=lambda r: r[0])}


def notes(path: Path, run_ids: Sequence[str]) -> dict[str, list[tuple[str, str, str]]]:
    """Each run's notes in order: (kind, text, created_at)."""
    rows = _query(
        path,
        f"SELECT run_id, kind, text, created_at FROM note WHERE run_id IN ({_IDS}) ORDER BY run_id, seq",
        [json.dumps(run_ids)],
    )
    return {rid: [r[1:] for r in group] for rid, group in groupby(rows, key=lambda r: r[0])}


def _finite(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else None


def curves_json(path: Path, run_ids: Sequence[str], keys: Sequence[str]) -> dict[str, str]:
    """Each run's curve as JSON text, ``[[step, [value of each key or null]], ...]``, in no particular order
    (SQLite builds each run's array; ordering inside an aggregate needs SQLite 3.44): sort by step."""
    paths = [f'$."{k}"' for k in keys]
    # json_extract parses a record once for several paths and returns them as an array; for one path it
    # returns the bare value, so that case is wrapped.
    values = f"json_extract(metrics, {', '.join('?' for _ in paths)})"
    values = values if len(paths) > 1 else f"json_array({values})"
    params = [*paths, json.dumps(run_ids)]
    try:  # the common case: no record holds NaN or Infinity
        rows = _query(
            path,
            f"SELECT run_id, json_group_array(json_array(step, {values})) FROM step WHERE run_id IN ({_IDS}) "
            "GROUP BY run_id",
            params,
        )
        return dict(rows)
    except sqlite3.OperationalError as exc:
        if "malformed JSON" not in str(exc):
            raise
    # Checking every record for the two words up front costs about as much again; only stores that hold them
    # pay it, and only their records go through Python.
    rows = _query(
        path,
        f"SELECT run_id, step, CASE WHEN {_NOT_STRICT} THEN NULL ELSE json_array(step, {values}) END, "
        f"CASE WHEN {_NOT_STRICT} THEN metrics END FROM step WHERE run_id IN ({_IDS}) ORDER BY run_id, step",
        params,
    )
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


def samples_json(path: Path, run_ids: Sequence[str]) -> dict[str, str]:
    """Each run's sample completions as JSON text, ``[[step, idx, prompt, completion, reward, advantage], ...]``
    in no particular order (sort by step and idx), reward and advantage rounded to 4 decimals. SQLite builds it
    all, with no Python call per row (the report looks up each answer by prompt and completion: texts())."""
    return dict(_query(
        path,
        f"SELECT run_id, json_group_array(json_array(step, idx, prompt, completion, "
        f"{_SAMPLE_NUMBER.format('reward')}, {_SAMPLE_NUMBER.format('advantage')})) "
        f"FROM sample WHERE run_id IN ({_IDS}) GROUP BY run_id",
        [json.dumps(run_ids)],
    ))  # fmt: skip


def texts(path: Path, run_ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """The distinct prompts and the distinct completions of these runs' samples (they repeat a lot: 1,764 and
    425 among a 1,000-run store's 400,000 samples)."""
    ids = [json.dumps(run_ids)]
    return tuple(  # type: ignore[return-value]
        [r[0] for r in _query(path, f"SELECT DISTINCT {col} FROM sample WHERE run_id IN ({_IDS})", ids)]
        for col in ("prompt", "completion")
    )
