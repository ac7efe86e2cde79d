"""Compare runs: one row per run, the configuration columns that differ, metrics, verdict, diagnostics;
grouped by seed, and paired against a baseline group seed by seed.

``--where`` is parsed (filters.py) into conditions that the store binds as SQL parameters; field names
are checked first. Metric columns carry metrics.py's names, so a column, a ``--where`` field and a
``--criteria`` field are the same word. Nothing here imports torch, transformers or trl.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import answer, diagnostics, filters, metrics, stats
from .config import config_fields
from .diagnostics import diagnose
from .errors import GrpoLabError
from .store.query import FINISHED
from .suites import SUITES
from .text import count, printable

RUN_FIELDS = {"id": "id", "name": "exp_name", "exp_name": "exp_name", "status": "status", "kind": "kind",
              "model": "model_name", "started": "started_at", "duration": "duration_s",
              "verdict": "verdict"}  # fmt: skip
CONFIG_FIELDS = [name for name, *_ in config_fields()]
HEADLINE = ["final_reward", "zero_std", "kl", "kl_last", "grad_norm", "steps", "train_acc", "train_acc_before",
            "train_acc_gain", "held_out", "held_out_before", "held_out_gain"]  # fmt: skip
SEED_INDEPENDENT = {"seed", "output_dir", "upgrade_note"}  # what may differ between runs that --group-by-seed collapses
SHOWN_ELSEWHERE = {"exp_name"}  # the name column already shows it
# table: fitted to the terminal; plain: aligned text, every value whole (the default when piped); tsv: the same
# cells tab-separated (cut, awk -F'\t'); md: a Markdown table; csv and json: raw numbers for programs.
FORMATS = ("table", "plain", "tsv", "md", "csv", "json")
OLD_MARK = "†"
DIRTY_MARK = "*"
DIRTY_NOTE = (
    f"{DIRTY_MARK} ran with uncommitted changes in its git tree: `grpo-lab show ID` says whether their diff was kept"
)
OLD_NOTE = (
    f"{OLD_MARK} recorded before suites were held out of training sets: the run (and the tiny model it may have "
    "started from) could have trained on suite problems; its SUITE_overlap says how many, where known"
)


class _Fields:
    """The fields --where accepts: run columns, config flags, and metric names: the headline ones, those of
    the built-in suites, and any other the store holds (``has_metric``, a user suite's, say)."""

    def __init__(self, has_metric: Callable[[str], bool] | None = None):
        self.has_metric = has_metric

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if name in RUN_FIELDS or name in CONFIG_FIELDS or name in HEADLINE:
            return True
        if not _is_metric(name):
            return False
        parsed = metrics.parse(name)
        return (parsed is None or parsed.split in metrics.OWN_SPLITS or parsed.split in SUITES
                or (self.has_metric is not None and self.has_metric(name)))  # fmt: skip

    def __iter__(self) -> Iterator[str]:
        return iter([*RUN_FIELDS, *CONFIG_FIELDS, *HEADLINE, "SUITE (e.g. arith-v1)", "SUITE[OP]", "SUITE_gain"])


def _is_metric(name: str) -> bool:
    if name in metrics.CURVE or name in metrics.CURVE_EXTRA:
        return True
    parsed = metrics.parse(name)
    return parsed is not None and name not in CONFIG_FIELDS and name not in RUN_FIELDS


def parse_where(expr: str | None, has_metric: Callable[[str], bool] | None = None) -> list[filters.Condition]:
    return filters.parse(expr, _Fields(has_metric), "--where")


CONFIG_TYPES = {name: type_text for name, type_text, *_ in config_fields()}
NUMERIC_RUN_FIELDS = {"duration"}


def _store_condition(c: filters.Condition) -> tuple[str, str, str, Any]:
    """The store's (source, key, op, value) for a condition, its value of the field's type: a number for metrics,
    durations and numeric flags, true/false for switches, text as typed for a run's text columns (``name=123`` is
    the name "123"). A value of the wrong type is refused in one line, on every database alike; a flag that takes
    words compared with a number matches no run (query.py compares a config value by its type)."""
    if c.field in RUN_FIELDS:
        source, key = "run", RUN_FIELDS[c.field]
        kind = "number" if c.field in NUMERIC_RUN_FIELDS else "text"
    elif c.field in CONFIG_FIELDS:
        source, key = "config", c.field
        type_text = CONFIG_TYPES[c.field]
        kind = "switch" if type_text == "bool" else "number" if ("int" in type_text or "float" in type_text) else "any"
    else:
        source, key, kind = "metric", c.field, "number"
    return (source, key, c.op, _typed(c, kind))


def _typed(c: filters.Condition, kind: str) -> Any:
    if c.value is None or kind == "any":
        return c.value
    if kind == "text":
        return c.text if c.text is not None and not isinstance(c.value, str) else c.value
    if kind == "switch":
        word = str(c.text if c.text is not None else c.value).lower()
        if word in ("true", "1", "1.0", "false", "0", "0.0"):
            return 1.0 if word in ("true", "1", "1.0") else 0.0
        raise GrpoLabError(f"--where {c.field}{c.op}{c.text or c.value}: {c.field} is a switch; compare it with "
                           f"true or false, e.g. {c.field}=true")  # fmt: skip
    if isinstance(c.value, str):
        raise GrpoLabError(f"--where {c.field}{c.op}{c.value}: {c.field} is a number; compare it with a number, "
                           f"e.g. {c.field}>=0.5")  # fmt: skip
    return c.value


# --- rows and columns -------------------------------------------------------------------------------------------


@dataclass
class Table:
    columns: list[str]
    rows: list[dict[str, Any]]  # raw values: floats for accuracies (0-1), strings, ints
    percent: set[str]  # columns shown as percentages
    title: str = ""
    notes: list[str] = field(default_factory=list)  # printed under the table in every human format
    marked: set[str] = field(default_factory=set)  # columns whose cells get OLD_MARK on pre-m004 runs
    changes: set[str] = field(default_factory=set)  # accuracy columns shown as "before -> after" (COL_before)
    selected: int | None = None  # when a page was shown: how many runs the filters selected in all
    points: bool = False  # a paired table of accuracies: differences in percentage points
    grouped: bool = False  # rows are seed groups or paired comparisons, every cell drawn by cell()
    asked: set[str] = field(default_factory=set)  # fields --where or --sort named: a terminal keeps them first


def _seed_key(row: dict[str, Any]) -> str:
    """What a seed group shares: a sweep's arm (its runs differ only in seed by construction, though a queued run's
    recorded config still lacks what is resolved when it starts), else the whole config but the seed."""
    if row.get("sweep_id") and row.get("arm"):
        return json.dumps(["arm", row["sweep_id"], row["arm"]])
    return json.dumps({k: v for k, v in row["config"].items() if k not in SEED_INDEPENDENT}, sort_keys=True)


def _names(rows: list[dict[str, Any]]) -> list[str]:
    """Every metric name any row has."""
    return list(set().union(*(row["metrics"] for row in rows)))


def _suites(rows: list[dict[str, Any]]) -> list[str]:
    """The suites any row was evaluated on, built-in ones first, then by name."""
    found = set(metrics.suites_of(_names(rows)))
    return [s for s in SUITES if s in found] + sorted(found - set(SUITES))


def _is_accuracy(name: str, suites: list[str]) -> bool:
    parsed = metrics.parse(name)
    return (
        parsed is not None
        and parsed.suffix != "overlap"
        and (parsed.split in metrics.OWN_SPLITS or parsed.split in suites)
    )


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
    left_out = []
    if group_by_seed:  # seed groups hold finished runs only, so that n counts the values a mean is over
        left_out = [r["status"] for r in rows if r["status"] != FINISHED]
        rows = [r for r in rows if r["status"] == FINISHED]
    config_cols = CONFIG_FIELDS if all_columns else [c for c in _varying(rows) if c not in SHOWN_ELSEWHERE]
    if group_by_seed:
        config_cols = [c for c in config_cols if c not in SEED_INDEPENDENT]
    suites, names = _suites(rows), _names(rows)
    suite_cols = []
    for i, suite in enumerate(suites):
        suite_cols.append(metrics.acc(suite))
        if all_columns or i == 0:  # per-operation columns of the first suite; of all with --all-columns
            groups = metrics.groups_of(names, suite)
            suite_cols += [metrics.acc(suite, g) for g in groups]
    extra = [metrics.overlap(s) for s in suites] + ["held_out_before", "train_acc_before"] if all_columns else []
    result_cols = ["final_reward", "train_acc", "held_out", *suite_cols, "zero_std", *extra, "duration"]
    flat = []
    for row in rows:
        m = row["metrics"]
        out = {"id": row["id"], "name": row["exp_name"], "status": row["status"], "started": row["started_at"][:16],
               "kind": row.get("kind", "train")}  # fmt: skip
        out.update({c: row["config"].get(c) for c in config_cols})
        out.update({c: m.get(c) for c in result_cols})
        out["duration"] = row["duration_s"]
        out["verdict"] = row.get("verdict")
        out["suites_disjoint"] = bool(row.get("suites_disjoint", True))
        out["git_dirty"] = bool(row.get("git_dirty"))
        out["diagnostics"] = " ".join(f.code for f in diagnose(row["config"], m))
        flat.append(out)
    columns = ["id", "name", "status", "started", *config_cols, *result_cols, "verdict", "diagnostics"]
    percent = {c for c in result_cols if _is_accuracy(c, suites)}
    marked = {c for c in result_cols if (p := metrics.parse(c)) is not None and p.split in suites}
    table = Table(columns, flat, percent, marked=marked)
    if group_by_seed:
        table.rows, table.columns = _group_by_seed(rows, flat, columns, result_cols)
        table.grouped = True
    if any(not r["suites_disjoint"] for r in table.rows) and suites:
        table.notes.append(OLD_NOTE)
    if any(r["git_dirty"] for r in table.rows):
        table.notes.append(DIRTY_NOTE)
    repeats = repeated_seeds(rows) if group_by_seed else []
    if repeats:
        table.notes.append(f"{_runs(len(repeats))} of a seed already in {'its' if len(repeats) == 1 else 'their'} "
                           f"group left out (the newest run of each seed counts): {', '.join(repeats)}")  # fmt: skip
    if left_out:
        counts = ", ".join(f"{left_out.count(s)} {s}" for s in sorted(set(left_out)))
        table.notes.append(f"not in the groups (no results to average): {counts}")
    return table


RUNS_TITLE = "Runs, newest first"


def runs_table(rows: list[dict[str, Any]]) -> Table:
    """``grpo-lab runs``: ID, status, name, start, hypothesis, before -> after on the run's own held-out problems,
    each suite (a terminal keeps the first) and the training problems, the final reward, and the verdict."""
    suites = _suites(rows)
    changes = ["held_out", *suites, "train_acc"]
    flat = []
    for row in rows:
        m = row["metrics"]
        out = {"id": row["id"], "status": row["status"], "name": row["exp_name"], "started": row["started_at"][:16],
               "hypothesis": row["hypothesis"], "final_reward": m.get("final_reward"), "verdict": row["verdict"],
               "suites_disjoint": row["suites_disjoint"], "git_dirty": bool(row.get("git_dirty"))}  # fmt: skip
        for col in changes:
            out[col], out[f"{col}_before"] = m.get(col), m.get(f"{col}_before")
        flat.append(out)
    columns = ["id", "status", "name", "started", "hypothesis", *changes, "final_reward", "verdict"]
    marked = set(suites)
    table = Table(columns, flat, set(changes), title=RUNS_TITLE, marked=marked, changes=set(changes))
    if any(not r["suites_disjoint"] for r in flat) and suites:
        table.notes.append(OLD_NOTE)
    if any(r["git_dirty"] for r in flat):
        table.notes.append(DIRTY_NOTE)
    return table


def _group_by_seed(rows, flat, columns, result_cols):
    out = []
    for pairs in _groups(rows, flat).values():
        members = [row for _, row in pairs]
        merged = {c: members[0].get(c) for c in columns if c not in result_cols}
        merged["id"] = ",".join(m["id"] for m in members)
        merged["n"] = len(members)
        merged["seeds"] = ",".join(str(raw["config"].get("seed", "-")) for raw, _ in pairs)
        for col in result_cols:
            values = [m[col] for m in members if isinstance(m.get(col), int | float)]
            merged[col] = statistics.fmean(values) if values else None
            merged[f"{col}_sd"] = statistics.stdev(values) if len(values) > 1 else None
        verdicts = [m["verdict"] or "unchecked" for m in members]
        merged["verdict"] = " ".join(f"{v}×{verdicts.count(v)}" for v in sorted(set(verdicts)))
        merged["suites_disjoint"] = all(m["suites_disjoint"] for m in members)
        merged["git_dirty"] = any(m["git_dirty"] for m in members)
        merged["diagnostics"] = " ".join(sorted({d for m in members for d in (m["diagnostics"] or "").split()}))
        out.append(merged)
    columns = [c for c in columns if c not in ("status", "started")]
    columns[columns.index("name") + 1 : columns.index("name") + 1] = ["n", "seeds"]
    return out, columns


def _groups(rows, flat=None) -> dict[str, list[tuple[dict[str, Any], dict[str, Any]]]]:
    """Runs that differ only in seed, groups in order of first appearance, runs in a group by seed: (raw row,
    flat row) pairs. Only finished runs are in a group, one per seed (the newest: a rerun or a repeat of a seed
    is no new sample), so that n counts the independent values a mean is over."""
    groups: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for raw, row in zip(rows, flat or rows, strict=True):
        if raw["status"] != FINISHED:
            continue
        groups.setdefault(_seed_key(raw), []).append((raw, row))
    return {key: sorted(_newest_per_seed(pairs), key=lambda pair: _seed_order(pair[0]))
            for key, pairs in groups.items()}  # fmt: skip


def _newest_per_seed(pairs):
    newest: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for pair in pairs:
        seed = json.dumps(pair[0]["config"].get("seed"))
        if seed not in newest or (pair[0]["started_at"], pair[0]["id"]) > (newest[seed][0]["started_at"],
                                                                           newest[seed][0]["id"]):  # fmt: skip
            newest[seed] = pair
    return list(newest.values())


def repeated_seeds(rows) -> list[str]:
    """The finished runs a seed group leaves out: older runs of a seed its group already has (reruns, repeats)."""
    kept = {raw["id"] for pairs in _groups(rows).values() for raw, _ in pairs}
    return [r["id"] for r in rows if r["status"] == FINISHED and r["id"] not in kept]


def _seed_order(raw: dict[str, Any]) -> tuple:
    seed = raw["config"].get("seed")
    return (0, seed, raw["id"]) if isinstance(seed, int | float) else (1, str(seed), raw["id"])


# --- paired comparison against a baseline group ---------------------------------------------------------------------


def paired_table(rows: list[dict[str, Any]], baseline: str, metric: str | None = None) -> Table:
    """For every seed group other than ``baseline`` (a run name, or a run ID or prefix in that group): the
    per-seed differences in ``metric`` from the baseline on the seeds both have, their mean ± sd, a 95% t
    interval, the exact two-sided sign-flip p-value, n pairs, and Holm-adjusted p across the groups shown."""
    groups = list(_groups(rows).values())
    if not groups:
        raise GrpoLabError("--baseline: no runs to compare")
    base = _find_baseline(groups, baseline)
    if metric is None:
        metric = next(iter(_suites(rows)), "held_out")
    known = {name for raw in rows for name in raw["metrics"]}
    if metric not in known:
        raise GrpoLabError(f"--metric {metric!r}: no run here has it; use a result column such as held_out or arith-v1")
    is_acc = _is_accuracy(metric, _suites(rows))
    base_name = base[0][0]["exp_name"]

    def by_seed(group) -> dict[Any, float | None]:
        return {raw["config"].get("seed"): raw["metrics"].get(metric) for raw, _ in group}

    base_values = by_seed(base)
    out = []
    for group in groups:
        if group is base:
            continue
        values = by_seed(group)
        seeds = [s for s in values if s in base_values and values[s] is not None and base_values[s] is not None]
        diffs = [values[s] - base_values[s] for s in seeds]
        unpaired = sorted({*values, *base_values} - set(seeds), key=str)
        row = {"name": group[0][0]["exp_name"], "id": ",".join(raw["id"] for raw, _ in group), "n": len(seeds),
               "seeds": ",".join(map(str, seeds)), "unpaired": ",".join(map(str, unpaired)) or None,
               "baseline": statistics.fmean(base_values[s] for s in seeds) if seeds else None,
               "value": statistics.fmean(values[s] for s in seeds) if seeds else None}  # fmt: skip
        if seeds:
            result = stats.paired(diffs)
            row.update(diff=result.mean, diff_sd=result.sd, ci_low=result.ci_low, ci_high=result.ci_high,
                       p=result.p, min_p=result.min_p, per_seed=diffs,
                       note=_note(result))  # fmt: skip
        else:
            row.update(diff=None, diff_sd=None, ci_low=None, ci_high=None, p=None, min_p=None, per_seed=[],
                       note="no seeds in common with the baseline")  # fmt: skip
        out.append(row)
    tested = [r for r in out if r["p"] is not None]
    for r, adjusted in zip(tested, stats.holm([r["p"] for r in tested]), strict=True):
        r["p_holm"] = adjusted
    for r in out:
        r["mde"] = detectable(r.get("per_seed") or [], len(tested))
    columns = ["name", "id", "n", "seeds", "baseline", "value", "diff", "ci95", "mde", "p", "p_holm", "note",
               "unpaired"]  # fmt: skip
    percent = {"baseline", "value", "diff", "ci95", "mde"} if is_acc else set()
    title = (
        f"Paired by seed: {metric} minus baseline {base_name} (95% interval: t; p: exact two-sided sign-flip "
        f"permutation test; p_holm: Holm-adjusted over the {len(tested)} groups; mde: the difference these seeds "
        f"detect 80% of the time at p_holm < {answer.ALPHA:g})"
    )
    table = Table(columns, out, percent, title=title, points=is_acc, grouped=True)
    return table


def detectable(diffs: list[float], arms: int, alpha: float = answer.ALPHA) -> float | None:
    """The minimum detectable effect of a paired comparison, in the metric's units: the standardized MDE of its n
    seeds at Holm's alpha over ``arms`` (stats.mde) times the sd of its paired differences; None when its seeds
    cannot reach that significance at all, or it has fewer than 2 pairs."""
    if len(diffs) < 2 or arms < 1:
        return None
    sd = statistics.stdev(diffs)
    standardized = stats.mde(len(diffs), arms, alpha)
    return None if standardized is None or sd == 0 else standardized * sd


def same_on_every_row(table: Table, columns: tuple[str, ...] = ("n", "seeds", "baseline", "note", "unpaired")) -> Table:
    """A paired table with the columns whose every cell is the same taken out and said once, in the title."""
    if len(table.rows) < 2:
        return table
    said = []
    for col in columns:
        cells = {cell(table, row, col) for row in table.rows}
        if col in table.columns and len(cells) == 1:
            (value,) = cells
            table.columns = [c for c in table.columns if c != col]
            if value != "-":
                said.append(f"{col} {value}")
    if said:
        table.title += "; every row: " + "; ".join(said)
    return table


def _note(result: stats.Paired) -> str:
    kind = "" if result.exact else " (p sampled from 200,000 sign patterns)"
    if result.too_small:
        return f"n={result.n} too small: p cannot go below {result.min_p:.3g}{kind}"
    return f"smallest possible p {result.min_p:.2g}{kind}"


def _find_baseline(groups, key: str):
    by_name = [g for g in groups if any(raw["exp_name"] == key for raw, _ in g)]
    by_id = [g for g in groups if any(raw["id"].startswith(key) for raw, _ in g)]
    found = by_name or by_id
    if not found:
        names = ", ".join(sorted({g[0][0]["exp_name"] for g in groups}))
        raise GrpoLabError(f"--baseline {key!r} names no run or group here; groups: {names}")
    if len(found) > 1:
        raise GrpoLabError(f"--baseline {key!r} matches {len(found)} seed groups; give a run ID from one of them")
    return found[0]


PAGE = 100  # runs a human format shows when no --limit, --last, IDs or grouping choose them (--limit 0: all)


def compare(fetch, ids=None, where=None, tag=None, last=None, sort=None, limit=None, all_columns=False,
            group_by_seed=False, page=None) -> Table:  # fmt: skip
    """``fetch`` is sqlite_read.table_rows bound to a store file (see its arguments); a ``has_metric`` attribute
    on it, if any, tells whether the store holds a metric of that name (for --where on user suites). With
    ``page`` and nothing else bounding the selection, only the first ``page`` rows are fetched and tabled, and
    ``Table.selected`` counts them all (from a ``count`` attribute of ``fetch``)."""
    names = _needed(fetch, all_columns, sort)
    if sort is not None and not sort.lstrip("-"):
        raise GrpoLabError("--sort needs a column: --sort COL ascending, --sort -COL descending")
    paged = page if page and not (limit or ids or last or group_by_seed) and hasattr(fetch, "count") else None
    limit = limit or paged
    if sort and _limits_in_sql(sort, limit, last, group_by_seed):  # the table never sees the other rows: ask now
        col = sort.lstrip("-")
        if col not in _Fields(getattr(fetch, "has_metric", None)):
            held = fetch.metric_names() if hasattr(fetch, "metric_names") else []
            hint = filters.suggest(col, [*_Fields(), *held], "") or (
                "; sort by a flag, a run field or a metric this store holds, e.g. --sort -arith-v1"
            )
            raise GrpoLabError(f"--sort: no column {col!r}{hint}")
    rows = fetch_rows(fetch, ids, where, tag, last, sort, limit, group_by_seed, names)
    if ids and not (where or tag or last or limit):  # with no other filter every ID must name some run
        missing = [i for i in ids if not any(row["id"].startswith(i) for row in rows)]
        if missing:
            raise GrpoLabError(f"no run with ID {missing[0]!r}; `grpo-lab runs` lists them")
    table = build_table(rows, all_columns, group_by_seed)
    table.asked = {c.field for c in parse_where(where, getattr(fetch, "has_metric", None))}
    table.asked |= {RUN_FIELDS.get(sort.lstrip("-"), sort.lstrip("-"))} if sort else set()
    if sort and not _limits_in_sql(sort, limit, last, group_by_seed):
        table.rows = sort_rows(table, sort)
    if limit:
        table.rows = table.rows[:limit]
    if paged and len(rows) >= paged:
        table.selected = fetch.count(_conditions(fetch, where), ids or None, tag)
    return table


def _limits_in_sql(sort, limit, last, group_by_seed) -> bool:
    """Whether the database can sort and cut the selection itself (then only ``limit`` rows are decoded)."""
    field_ = sort.lstrip("-") if sort else None
    return bool(limit and not last and not group_by_seed and (field_ is None or field_ in _Fields(lambda _: True)))


def _needed(fetch, all_columns: bool, sort: str | None) -> list[str] | None:
    """The metrics a table shows or diagnoses, out of those the store holds (None: every metric)."""
    if not hasattr(fetch, "metric_names"):
        return None
    held = fetch.metric_names()
    suites = metrics.suites_of(held)
    needed = {"final_reward", "train_acc", "held_out", "zero_std", *diagnostics.METRICS,
              *(metrics.overlap(s) for s in suites), *(metrics.acc(s) for s in suites)}  # fmt: skip
    needed |= {metrics.acc(s, g) for s in suites for g in metrics.groups_of(held, s)}
    if all_columns:
        needed |= {"held_out_before", "train_acc_before"}
    if sort:
        needed.add(sort.lstrip("-"))
    return sorted(needed & set(held))


def _conditions(fetch, where):
    return [_store_condition(c) for c in parse_where(where, getattr(fetch, "has_metric", None))]


def fetch_rows(fetch, ids=None, where=None, tag=None, last=None, sort=None, limit=None, group_by_seed=False,
               names=None):  # fmt: skip
    conditions = _conditions(fetch, where)
    order = None
    in_sql = _limits_in_sql(sort, limit, last, group_by_seed)
    if in_sql and sort:  # top-N in SQL: only N rows are decoded and tabled
        field_ = sort.lstrip("-")
        source, key, _, _ = _store_condition(filters.Condition("exp_name" if field_ == "name" else field_, "=", None))
        order = (source, key, sort.startswith("-"))
    if names is None:
        return fetch(conditions, ids or None, tag, last, order, limit if in_sql else None)
    return fetch(conditions, ids or None, tag, last, order, limit if in_sql else None, names=names)


def sort_rows(table: Table, sort: str) -> list[dict[str, Any]]:
    """``--sort COL`` ascending, ``--sort -COL`` descending; missing values last."""
    descending = sort.startswith("-")
    col = sort.lstrip("-")
    if col not in table.columns:
        hint = filters.suggest(col, table.columns, "")
        raise GrpoLabError(f"--sort: no column {col!r}{hint or '; columns: ' + ', '.join(table.columns)}")
    present = [r for r in table.rows if r.get(col) is not None]
    missing = [r for r in table.rows if r.get(col) is None]
    return sorted(present, key=lambda r: (isinstance(r[col], str), r[col]), reverse=descending) + missing


# --- formats --------------------------------------------------------------------------------------------------


def cell(table: Table, row: dict[str, Any], col: str) -> str:
    value = row.get(col)
    if col == "ci95":
        return _interval(table, row)
    if col in table.changes:
        return _change(table, row, col)
    if value is None:
        return "-"
    if col == "id":  # a seed group: its first run and how many more (csv/json keep them all)
        first, *rest = value.split(",")
        return first + (DIRTY_MARK if row.get("git_dirty") else "") + (f" +{len(rest)}" if rest else "")
    sd = row.get(f"{col}_sd")
    mark = OLD_MARK if col in table.marked and not row.get("suites_disjoint", True) else ""
    if col in ("p", "p_holm", "min_p") and isinstance(value, float):
        return f"{value:.3g}"
    if col in table.percent and isinstance(value, int | float):
        if col == "diff":  # a difference of two accuracies, in percentage points
            return f"{100 * value:+.1f} pt" + (f" ± {100 * sd:.1f}" if sd is not None else "")
        if col == "mde":
            return f"{100 * value:.1f} pt"
        return metrics.pct(value) + (f" ± {100 * sd:.1f}" if sd is not None else "") + mark
    if isinstance(value, float):
        if col == "duration":
            return f"{value:.0f}s"
        return f"{value:.3g}" + (f" ± {sd:.2g}" if sd is not None else "") + mark
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value) + mark


def _change(table: Table, row: dict[str, Any], col: str) -> str:
    before, after = row.get(f"{col}_before"), row.get(col)
    if before is None and after is None:
        return "-"
    mark = OLD_MARK if col in table.marked and not row.get("suites_disjoint", True) else ""
    return " -> ".join("-" if v is None else f"{100 * v:.1f}%" for v in (before, after)) + mark


def _interval(table: Table, row: dict[str, Any]) -> str:
    low, high = row.get("ci_low"), row.get("ci_high")
    if low is None or high is None:
        return "-"
    if "ci95" in table.percent:
        return f"[{100 * low:+.1f}, {100 * high:+.1f}]"
    return f"[{low:+.3g}, {high:+.3g}]"


def _formatter(table: Table, col: str):
    """A fast formatter for one column of an ungrouped run table (grouped and paired tables use cell)."""
    percent = col in table.percent
    marked = col in table.marked
    if col in table.changes:
        return lambda _, row: _change(table, row, col)
    if col == "id":
        return lambda value, row: value + (DIRTY_MARK if row.get("git_dirty") else "")

    def fmt(value: Any, row: dict[str, Any]) -> str:
        if value is None:
            return "-"
        mark = OLD_MARK if marked and not row["suites_disjoint"] else ""
        if percent and isinstance(value, int | float):
            return metrics.pct(value) + mark
        if isinstance(value, float):
            return f"{value:.0f}s" if col == "duration" else f"{value:.3g}{mark}"
        if isinstance(value, list):
            return ",".join(map(str, value))
        return str(value).replace("|", "/")

    return fmt


def to_markdown(table: Table) -> str:
    lines = [f"**{printable(table.title)}**\n"] if table.title else []
    lines += ["| " + " | ".join(table.columns) + " |", "|" + "|".join(" --- " for _ in table.columns) + "|"]
    if table.grouped:  # seed groups or paired rows (whose n may have been said once, in the title)
        for row in table.rows:
            lines.append("| " + " | ".join(printable(cell(table, row, c)).replace("|", "/") for c in table.columns)
                         + " |")  # fmt: skip
    else:
        formatters = [(c, _formatter(table, c)) for c in table.columns]
        for row in table.rows:
            lines.append("| " + " | ".join([printable(f(row.get(c), row)) for c, f in formatters]) + " |")
    lines += ["", *map(printable, table.notes)] if table.notes else []
    return "\n".join(lines) + "\n"


def _raw_columns(table: Table) -> list[str]:
    """Columns of the machine formats: every shown column, its sd where rows were grouped, the raw numbers
    behind a paired row, and whether a run's suites were held out of its training set."""
    cols = []
    for c in table.columns:
        if c == "ci95":
            cols += ["ci_low", "ci_high"]
            continue
        cols.append(c)
        if c in table.changes:
            cols.append(f"{c}_before")
        if any(f"{c}_sd" in r for r in table.rows):
            cols.append(f"{c}_sd")
    if "p" in table.columns:
        cols += ["min_p", "per_seed"]
        cols += [k for k in ("arm", "verdict_words", "thresholds") if any(k in r for r in table.rows)]
        return cols
    if table.marked:
        cols.append("suites_disjoint")
    if any("git_dirty" in r for r in table.rows):
        cols.append("git_dirty")
    return cols


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_raw_columns(table), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in table.rows:
        writer.writerow({k: _csv_value(v) for k, v in row.items()})
    return buf.getvalue()


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list):
        return " ".join(map(repr, v))
    return v


def to_json(table: Table) -> str:
    cols = _raw_columns(table)
    return json.dumps([{c: row.get(c) for c in cols} for row in table.rows], indent=1, ensure_ascii=False) + "\n"


# Readable headers for the terminal table; --sort, --where and the machine formats keep the full names.
SHORT_HEADERS = {"learning_rate": "lr", "num_generations": "gens", "batch_size": "batch", "temperature": "temp",
                 "dataset_type": "dataset", "max_completion_length": "max_len", "eval_batch_size": "eval_batch",
                 "model_name": "model"}  # fmt: skip
# What the terminal keeps longest: lower first. In a run table the fields --where or --sort named come first
# (ASKED), then the config columns that vary (10 + their rank: what tells the runs apart), then the verdict and
# the results; the config columns that differ between any two runs without changing the experiment go first.
ASKED = 2
_PRIORITY = {"id": 0, "name": 1, "verdict": 40, "held_out": 41, "n": 5, "diff": 2, "ci95": 3, "mde": 5, "p": 5,
             "p_holm": 4,
             "baseline": 6, "value": 7, "note": 8, "final_reward": 44, "diagnostics": 45, "status": 46,
             "train_acc": 47, "zero_std": 60, "duration": 61, "started": 62, "seeds": 63, "unpaired": 64,
             "seed": 80, "output_dir": 90, "tags": 91, "threads": 92, "eval_batch_size": 93}  # fmt: skip
_FLEX = {"name": 12, "diagnostics": 11, "note": 16}


def terminal_columns(table: Table) -> list:
    """The table's columns as a terminal shows them: readable headers, short times, and priorities; a column
    whose every cell is the same, or repeats another column, tells nothing in a comparison and goes first."""
    from .layout import Column

    suites = [c for c in table.columns if c in table.marked and metrics.parse(c) == metrics.Name(c)]  # arith-v1
    config_rank = _config_rank(table)
    out, seen = [], []
    for i, col in enumerate(table.columns):
        cells = [printable(cell(table, row, col)) for row in table.rows]  # no control character reaches a terminal
        if col == "started":
            cells = [c[5:].replace("T", " ") for c in cells]  # 11-25 15:01
        if col in table.asked and col not in ("id", "name"):
            priority = ASKED + len(seen) / 100
        elif col in _PRIORITY:
            priority = _PRIORITY[col]
        elif col in CONFIG_FIELDS:
            priority = 10 + config_rank[col]
        elif col in suites:
            priority = 42 if col == suites[0] else 50 + i
        else:
            priority = 70 + i
        # a config value an evaluation-only run lacks (it has no batch) is no difference; one left unset is
        known = [c for c, row in zip(cells, table.rows, strict=True) if col not in CONFIG_FIELDS or
                 row.get("kind", "train") != "eval"]  # fmt: skip
        if len(table.rows) > 1 and (len(set(cells)) == 1 or cells in seen):
            priority = 99
        elif len(set(known) - ({"-"} if col not in CONFIG_FIELDS else set())) <= 1:  # the same wherever known
            priority = 95
        seen.append(cells)
        out.append(Column(col, SHORT_HEADERS.get(col, col), cells, priority, col in _FLEX, _FLEX.get(col, 0),
                          right=col in table.percent or col in ("final_reward", "p", "p_holm", "n")))  # fmt: skip
    return out


def _config_rank(table: Table) -> dict[str, int]:
    """Config columns, most telling first: those where more runs differ from the usual value (a flag every
    other run changes) before those where one odd run does (the batch of the one SmolLM2 run)."""
    from collections import Counter

    def unusual(col: str) -> int:
        known = [str(row.get(col)) for row in table.rows if row.get(col) is not None]
        return len(known) - max(Counter(known).values(), default=0)

    config = [c for c in table.columns if c in CONFIG_FIELDS]
    return {c: rank for rank, c in enumerate(sorted(config, key=lambda c: (-unusual(c), config.index(c))))}


def to_rich(table: Table, width: int = 10**6):
    """The table for a terminal ``width`` wide: the columns that matter most, no word wrapped, a note naming
    the columns left out, and what the shortened headers stand for."""
    from rich.markup import escape

    from .layout import terminal_table

    columns = terminal_columns(table)
    out = terminal_table(columns, width, printable(table.title or _count(table)), [printable(n) for n in table.notes],
                         more=": a wider terminal, --all-columns, or --format csv shows them")  # fmt: skip
    shown = {str(c.header) for c in out.columns}
    legend = [f"{c.header} = {c.key}" for c in columns if c.header != c.key and c.header in shown]
    if legend:
        out.caption = "\n".join(filter(None, [out.caption, escape("; ".join(legend))]))
    return out


def _whole_columns(table: Table) -> list:
    columns = terminal_columns(table)
    for c in columns:
        c.header = c.key  # whole names: nothing here is short of room
    return columns


def to_plain(table: Table) -> str:
    """Every column whole, aligned, nothing wrapped (piped, or ``--all-columns`` on a terminal)."""
    from .layout import plain

    columns = _whole_columns(table)
    notes = "".join(f"{printable(n)}\n" for n in table.notes)
    return f"{printable(table.title or _count(table))}\n{plain(columns)}{notes}"


def _count(table: Table) -> str:
    if "n" in table.columns and "seeds" in table.columns:  # grouped by seed
        groups = len(table.rows)
        return f"{groups} seed group{'' if groups == 1 else 's'} of {_runs(sum(r['n'] for r in table.rows))}"
    return _runs(len(table.rows))


def _runs(n: int) -> str:
    return count(n, "run")


def to_tsv(table: Table) -> str:
    """The plain table's header and cells, one row per line, separated by tabs (none inside a cell)."""
    columns = _whole_columns(table)
    rows = [[c.header for c in columns]] + [list(r) for r in zip(*(c.cells for c in columns), strict=True)]
    return "".join("\t".join(" ".join(cell.split()) for cell in row) + "\n" for row in rows)
