"""Compare runs: one row per run, the configuration columns that differ, results, diagnostics.

``--where`` is parsed here into (field, operator, value) conditions and handed to the store, which
binds every value as an SQL parameter; field names are checked against the known ones first.
Nothing here imports torch, transformers or trl.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import statistics
from dataclasses import dataclass
from typing import Any

from .config import config_fields
from .diagnostics import SUMMARY_KEYS as DIAGNOSTIC_KEYS
from .diagnostics import diagnose
from .errors import GrpoLabError

RUN_FIELDS = {"id": "id", "name": "exp_name", "exp_name": "exp_name", "status": "status", "kind": "kind",
              "model": "model_name", "started": "started_at", "duration": "duration_s"}  # fmt: skip
# compare's result names -> summary keys. "final_reward", because "reward" is the config's reward type.
RESULT_FIELDS = {
    "final_reward": "reward",
    "train_acc": "train_acc",
    "held_out": "held_out",
    "held_out_before": "held_out_before",
    "zero_std": "zero_std",
    "kl": "kl",
    "kl_last": "kl_last",
    "grad_norm": "grad_norm",
    "steps": "steps",
}
CONFIG_FIELDS = [name for name, *_ in config_fields()]
SUMMARY_KEYS = tuple(dict.fromkeys([*RESULT_FIELDS.values(), *DIAGNOSTIC_KEYS, "suite", "held_out_ops"]))
SEED_INDEPENDENT = {"seed", "output_dir"}  # what may differ between runs that --group-by-seed collapses
SHOWN_ELSEWHERE = {"exp_name"}  # the name column already shows it
FORMATS = ("table", "md", "csv", "json")
OPS = ("!=", ">=", "<=", "==", "=", ">", "<")
_TOKEN = re.compile(r"""\s*(?:(?P<op>!=|>=|<=|==|=|>|<)|(?P<str>'[^']*'|"[^"]*")|(?P<word>[^\s=<>!'"]+))""")


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any


def valid_fields() -> list[str]:
    return [*RUN_FIELDS, *CONFIG_FIELDS, *RESULT_FIELDS]


def _tokens(expr: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    expr = expr.rstrip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise GrpoLabError(f"--where: cannot read {expr[pos:]!r}; write conditions like beta=0.1 and held_out>=0.5")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _value(kind: str, text: str) -> Any:
    if kind == "str":
        return text[1:-1]
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def parse_where(expr: str | None) -> list[Condition]:
    """``field op value [and field op value ...]`` with op one of = == != > >= < <=."""
    if not expr or not expr.strip():
        return []
    tokens = _tokens(expr)
    conditions = []
    i = 0
    while True:
        if i + 3 > len(tokens) or tokens[i][0] != "word" or tokens[i + 1][0] != "op" or tokens[i + 2][0] == "op":
            got = " ".join(t for _, t in tokens[i : i + 3]) or "nothing"
            raise GrpoLabError(f"--where: expected FIELD OP VALUE (OP one of {' '.join(OPS)}), got {got!r}")
        field, op, (kind, raw) = tokens[i][1], tokens[i + 1][1], tokens[i + 2]
        if field not in valid_fields():
            raise GrpoLabError(f"--where: unknown field {field!r}; valid fields: {', '.join(valid_fields())}")
        conditions.append(Condition(field, "=" if op == "==" else op, _value(kind, raw)))
        i += 3
        if i == len(tokens):
            return conditions
        if tokens[i] != ("word", "and"):
            raise GrpoLabError(f"--where: expected 'and' between conditions, got {tokens[i][1]!r}")
        i += 1


def _store_condition(c: Condition) -> tuple[str, str, str, Any]:
    if c.field in RUN_FIELDS:
        return ("run", RUN_FIELDS[c.field], c.op, c.value)
    if c.field in CONFIG_FIELDS:
        return ("config", c.field, c.op, c.value)
    return ("summary", RESULT_FIELDS[c.field], c.op, c.value)


# --- rows and columns -------------------------------------------------------------------------------------------


@dataclass
class Table:
    columns: list[str]
    rows: list[dict[str, Any]]  # raw values: floats for accuracies (0-1), strings, ints
    percent: set[str]  # columns shown as percentages


def _seed_key(row: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in row["config"].items() if k not in SEED_INDEPENDENT}, sort_keys=True)


def _operation_columns(rows: list[dict[str, Any]]) -> list[str]:
    ops = set()
    for row in rows:
        ops.update(_ops(row["summary"]))
    return [f"held_out[{op}]" for op in sorted(ops)]


def _ops(summary: dict[str, Any]) -> dict[str, float]:
    ops = summary.get("held_out_ops")
    return json.loads(ops) if isinstance(ops, str) else ops or {}


def _varying(rows: list[dict[str, Any]]) -> list[str]:
    """The config fields whose value is not the same in every row, in declaration order."""
    if not rows:
        return []
    first, varying = rows[0]["config"], set()
    for row in rows:
        config = row["config"]
        if config != first:
            varying.update(c for c in CONFIG_FIELDS if c not in varying and config.get(c) != first.get(c))
    return [c for c in CONFIG_FIELDS if c in varying]


def build_table(rows: list[dict[str, Any]], all_columns: bool = False, group_by_seed: bool = False) -> Table:
    config_cols = CONFIG_FIELDS if all_columns else [c for c in _varying(rows) if c not in SHOWN_ELSEWHERE]
    if group_by_seed:
        config_cols = [c for c in config_cols if c not in SEED_INDEPENDENT]
    op_cols = _operation_columns(rows)
    result_cols = ["final_reward", "train_acc", "held_out", *op_cols, "zero_std", "duration"]
    flat = []
    for row in rows:
        s = row["summary"]
        suite = s.get("suite")
        out = {"id": row["id"], "name": row["exp_name"], "status": row["status"], "started": row["started_at"][:16]}
        out.update({c: row["config"].get(c) for c in config_cols})
        out.update({"final_reward": s.get("reward"), "train_acc": s.get("train_acc"), "held_out": s.get("held_out"),
                    "zero_std": s.get("zero_std"), "duration": row["duration_s"], "suite": suite})  # fmt: skip
        ops = _ops(s)
        for col in op_cols:
            out[col] = ops.get(col[9:-1])
        out["diagnostics"] = " ".join(f.code for f in diagnose(row["config"], s))
        flat.append(out)
    columns = ["id", "name", "status", "started", *config_cols, *result_cols, "diagnostics"]
    percent = {"train_acc", "held_out", *op_cols}
    if group_by_seed:
        flat, columns = _group_by_seed(rows, flat, columns, result_cols)
    return Table(columns, flat, percent)


def _group_by_seed(rows, flat, columns, result_cols):
    groups: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for raw, row in zip(rows, flat, strict=True):
        groups.setdefault(_seed_key(raw), []).append((raw, row))
    out = []
    for pairs in groups.values():
        members = [row for _, row in pairs]
        merged = {c: members[0].get(c) for c in columns if c not in result_cols}
        merged["id"] = ",".join(m["id"] for m in members)
        merged["n"] = len(members)
        merged["seeds"] = ",".join(str(raw["config"].get("seed", "-")) for raw, _ in pairs)
        for col in result_cols:
            values = [m[col] for m in members if isinstance(m.get(col), int | float)]
            merged[col] = statistics.fmean(values) if values else None
            merged[f"{col}_sd"] = statistics.stdev(values) if len(values) > 1 else None
        merged["diagnostics"] = " ".join(sorted({d for m in members for d in (m["diagnostics"] or "").split()}))
        out.append(merged)
    columns = [c for c in columns if c not in ("status", "started")]
    columns[columns.index("name") + 1 : columns.index("name") + 1] = ["n", "seeds"]
    return out, columns


def compare(fetch, ids=None, where=None, tag=None, last=None, sort=None, limit=None, all_columns=False,
            group_by_seed=False) -> Table:  # fmt: skip
    """``fetch`` is sqlite_read.table_rows bound to a store file (see its arguments)."""
    conditions = [_store_condition(c) for c in parse_where(where)]
    field = sort.lstrip("-") if sort else None
    field = "exp_name" if field == "name" else field
    in_sql = bool(limit and field and not last and not group_by_seed and field in valid_fields())
    order = None
    if in_sql:  # top-N in SQL: only N rows are decoded and tabled
        source, key, _, _ = _store_condition(Condition(field, "=", None))
        order = (source, key, sort.startswith("-"))
    rows = fetch(conditions, ids or None, tag, last, SUMMARY_KEYS, order, limit if in_sql else None)
    table = build_table(rows, all_columns, group_by_seed)
    if sort and not in_sql:
        table.rows = sort_rows(table, sort)
    if limit:
        table.rows = table.rows[:limit]
    return table


def sort_rows(table: Table, sort: str) -> list[dict[str, Any]]:
    """``--sort COL`` ascending, ``--sort -COL`` descending; missing values last."""
    descending = sort.startswith("-")
    col = sort.lstrip("-")
    if col not in table.columns:
        raise GrpoLabError(f"--sort: no column {col!r}; columns: {', '.join(table.columns)}")
    present = [r for r in table.rows if r.get(col) is not None]
    missing = [r for r in table.rows if r.get(col) is None]
    return sorted(present, key=lambda r: (isinstance(r[col], str), r[col]), reverse=descending) + missing


# --- formats --------------------------------------------------------------------------------------------------


def cell(table: Table, row: dict[str, Any], col: str) -> str:
    value = row.get(col)
    if value is None:
        return "-"
    if col == "id" and "," in value:  # a seed group: its first run and how many more (csv/json keep them all)
        first, *rest = value.split(",")
        return f"{first} +{len(rest)}"
    sd = row.get(f"{col}_sd")
    if col in table.percent and isinstance(value, int | float):
        return f"{100 * value:.1f}%" + (f" ± {100 * sd:.1f}" if sd is not None else "")
    if isinstance(value, float):
        if col == "duration":
            return f"{value:.0f}s"
        return f"{value:.3g}" + (f" ± {sd:.2g}" if sd is not None else "")
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def _formatter(table: Table, col: str):
    """A fast formatter for one column of an ungrouped table (grouped tables also show ± sd: use cell)."""
    percent = col in table.percent

    def fmt(value: Any) -> str:
        if value is None:
            return "-"
        if percent and isinstance(value, int | float):
            return f"{100 * value:.1f}%"
        if isinstance(value, float):
            return f"{value:.0f}s" if col == "duration" else f"{value:.3g}"
        if isinstance(value, list):
            return ",".join(map(str, value))
        return str(value).replace("|", "/")

    return fmt


def to_markdown(table: Table) -> str:
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "|".join(" --- " for _ in table.columns) + "|"]
    grouped = "n" in table.columns
    if grouped:
        for row in table.rows:
            lines.append("| " + " | ".join(cell(table, row, c).replace("|", "/") for c in table.columns) + " |")
    else:
        formatters = [(c, _formatter(table, c)) for c in table.columns]
        for row in table.rows:
            lines.append("| " + " | ".join([f(row.get(c)) for c, f in formatters]) + " |")
    return "\n".join(lines) + "\n"


def _raw_columns(table: Table) -> list[str]:
    """Columns of the machine formats: every shown column, plus its sd where rows were grouped."""
    cols = []
    for c in table.columns:
        cols.append(c)
        if any(f"{c}_sd" in r for r in table.rows):
            cols.append(f"{c}_sd")
    return cols


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_raw_columns(table), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in table.rows:
        writer.writerow({k: ("" if v is None else repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def to_json(table: Table) -> str:
    cols = _raw_columns(table)
    return json.dumps([{c: row.get(c) for c in cols} for row in table.rows], indent=1) + "\n"


def to_rich(table: Table):
    from rich.markup import escape
    from rich.table import Table as RichTable

    out = RichTable(title=f"{len(table.rows)} runs")
    for col in table.columns:
        justify = "right" if col in table.percent else "left"
        out.add_column(escape(col), no_wrap=col in ("id", "status"), justify=justify)
    for row in table.rows:
        out.add_row(*(escape(cell(table, row, c)) for c in table.columns))
    return out
