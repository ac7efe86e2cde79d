"""The report: one self-contained HTML file for looking at runs in a browser, offline, opened from disk.

It holds, for a sweep (or a --baseline pairing), the answer first: one line per arm with its difference from
the baseline, its interval and its verdict in words, and a forest plot of the intervals. Then the training
curves, grouped by sweep arm, by runs that differ only in seed or by any config column (the group mean with
a 95% band over seeds), or one line per run; accuracy per group across the groups, with intervals; the
sample completions of every group side by side for one step or one prompt; compare's table of the runs
(same cells, metric columns first, diff-only by default); and each run's accuracy before -> after, its
samples, its intent and the command that reproduces it. The page layout and its script live in
``templates/report.html.j2``; the data is embedded as JSON: one blob parsed when the page opens (tables, the
answer, run details) and one per run (curve and samples), parsed only when that run is plotted or opened.
Charts are drawn by plotly.js, vendored in ``grpo_lab/vendor``; nothing on the page sends data anywhere.

Everything a person or a model wrote (hypotheses, notes, prompts, completions) reaches the page
only as JSON inside ``<script type="application/json">`` with ``<``, ``>`` and ``&`` escaped, and
the page's script writes it with ``textContent``: it is never markup.
"""

from __future__ import annotations

import json
import math
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

from . import __version__
from .compare import CONFIG_FIELDS, SEED_INDEPENDENT, Table, _seed_key, build_table, cell, fetch_rows, paired_table
from .diagnostics import diagnose
from .errors import GrpoLabError
from .journal import templates_dir, write_atomic
from .provenance import without_password
from .rewards import extract_answer
from .store import Rows, bulk, sqlite_read
from .store.location import Location
from .suites import tier_rank
from .tasks import task_type_of

DEFAULT_OUT = Path("report.html")
TEMPLATE = "report.html.j2"
# (step metric as TRL logs it, chart title, y axis title with its unit)
CURVES = (
    ("reward", "reward", "mean reward per completion"),
    ("reward_std", "reward std", "reward std within a group"),
    ("frac_reward_zero_std", "frac_reward_zero_std", "groups with zero reward spread (fraction)"),
    ("kl", "KL", "KL to the reference (nats per token)"),
    ("loss", "loss", "GRPO loss"),
    ("grad_norm", "grad norm", "gradient L2 norm"),
    ("learning_rate", "learning rate", "learning rate"),
)
# TRL's seconds per training step: summed, it is the page's time axis (training time, as TensorBoard's relative)
TIME_KEY = "step_time"
RUN_COLUMNS = ("id", "name")  # kept in place when the table scrolls sideways
STATE_COLUMNS = ("status", "started")  # after the metrics, before the config
# plotly's minified basic bundle (scatter, bar, pie), embedded in every report; scripts/vendor_plotly.sh updates it.
PLOTLY_JS = {"file": "plotly-basic.min.js", "package": "plotly.js-basic-dist-min", "version": "4.1.1",
             "sha256": "99784e3abfb07b142a15e521a439e6d9addceadb3f79553fd24c72774f0649ba"}  # fmt: skip
OWN_SPLITS = ("held_out", "train")  # shown after the suites
DIMENSIONS = ("overall", "operation", "task_type", "difficulty")


@dataclass
class Selection:
    run_ids: list[str] | None = None  # IDs or unique prefixes
    where: str | None = None  # compare's --where language
    tag: str | None = None
    last: int | None = None
    all_columns: bool = False
    baseline: str | None = None  # a run name or ID: every seed group paired against its group (compare's)
    metric: str | None = None  # what the pairing compares [default: the sweep's metric, else the first suite]
    sweep: str | None = None  # a sweep's ID or name: its current runs, its arms paired against its baseline arm

    def describe(self) -> str:
        parts = [f"sweep {self.sweep}"] if self.sweep else []
        if self.run_ids:
            parts.append("runs " + " ".join(self.run_ids))
        if self.where:
            parts.append(f"where {self.where}")
        if self.tag:
            parts.append(f"tag {self.tag}")
        if self.last:
            parts.append(f"newest {self.last}")
        if self.baseline:
            parts.append(f"paired against {self.baseline}")
        return ", ".join(parts) or "every run"


@dataclass
class Built:
    path: Path
    runs: int
    bytes: int
    seconds: float


# --- data -------------------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A raw table value as the page sorts it: numbers stay numbers, lists become text, NaN becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def accuracy_rows(results: list[tuple[str, str, str, str, int, int]]) -> list[list[Any]]:
    """[split, dimension, group, before correct, before total, after correct, after total], suites first."""
    by_key: dict[tuple[str, str, str], dict[str, tuple[int, int]]] = {}
    for stage, split, dimension, group, correct, total in results:
        by_key.setdefault((split, dimension, group), {})[stage] = (correct, total)

    def order(key: tuple[str, str, str]):
        split, dimension, group = key
        rank = DIMENSIONS.index(dimension) if dimension in DIMENSIONS else len(DIMENSIONS)
        return (split in OWN_SPLITS, OWN_SPLITS.index(split) if split in OWN_SPLITS else 0, split, rank,
                tier_rank(group))  # fmt: skip

    rows = []
    for key in sorted(by_key, key=order):
        before, after = by_key[key].get("before", (None, None)), by_key[key].get("after", (None, None))
        rows.append([*key, *before, *after])
    return rows


def run_detail(run: dict[str, Any], row: dict[str, Any], results: list, notes: list) -> dict[str, Any]:
    """What the page shows about one run beyond its table row; ``row`` is compare's raw row (config, metrics)."""
    return {
        "id": run["id"],
        "name": run["exp_name"],
        "kind": run["kind"],
        "status": run["status"],
        "verdict": run["verdict"],
        "verdict_detail": run["verdict_detail"],
        "error": run["error"],
        "hypothesis": run["hypothesis"],
        "expected": run["expected"],
        "criteria": run["criteria"],
        "command": without_password(run["command"]),  # a password an older grpo-lab recorded is never shown
        "resolved_command": without_password(run["resolved_command"]),
        "tags": run["tags"],
        "model": run["model_name"],
        "started": run["started_at"],
        "duration": _plain(run["duration_s"]),
        "diagnostics": [[f.code, f.severity, f.message] for f in diagnose(row["config"], row["metrics"])],
        "notes": [list(n) for n in notes],
        "accuracy": accuracy_rows(results),
        # the code it ran: a dirty tree (uncommitted changes) is marked in the table's id cell and its notes too
        "code": {"commit": run["git_commit"], "dirty": None if run["git_dirty"] is None else bool(run["git_dirty"])},
    }


def table_data(table: Table) -> dict[str, Any]:
    """A compare table as the page shows it: each cell as compare formats it, and raw values to sort by."""
    return {
        "title": table.title,
        "columns": list(table.columns),
        "rows": [
            {"cells": [cell(table, row, c) for c in table.columns], "sort": [_plain(row.get(c)) for c in table.columns]}
            for row in table.rows
        ],  # fmt: skip
        "notes": table.notes,
    }


def answer_tables(prompts: list[str], completions: list[str]) -> dict[str, list]:
    """What the page needs to show each stored sample's extracted answer without the report extracting it 400,000
    times: the task type of each distinct prompt, and the answer of each distinct completion under each task type
    that occurs (``rewards.extract_answer``, the one definition). The page looks a sample up by its prompt and
    completion."""
    task_of = {p: task_type_of(p) for p in prompts}
    kinds = sorted(set(task_of.values()))
    return {
        "kinds": kinds,
        "tasks": [[p, kinds.index(t)] for p, t in task_of.items()],
        "answers": [[c, *(extract_answer(c, k) for k in kinds)] for c in completions],
    }


@dataclass
class ReportData:
    data: dict[str, Any]  # the blob parsed when the page opens
    runs: dict[str, str]  # run ID -> its curve and samples as JSON text, parsed on demand


def _fetch(path: Path):
    """compare's row source over the SQLite store at ``path``, as the compare command builds it."""
    fetch = partial(sqlite_read.table_rows, path)
    fetch.has_metric = partial(sqlite_read.has_metric, path)
    return fetch


def _source(store: Path | Location):
    """The store as a Location, compare's row source over it, and its sweep finder: the fast stdlib reader for a
    SQLite file, ``store.Rows`` (the store's own readers) for a database server."""
    location = store if isinstance(store, Location) else Location(path=Path(store))
    if location.path is not None:
        return location, _fetch(location.path), partial(sqlite_read.find_sweep, location.path)
    rows = Rows(location)
    return location, rows, rows.find_sweep


def ordered_columns(columns: list[str]) -> list[str]:
    """compare's columns as the page shows them: id and name, the metrics (and verdict, diagnostics), status and
    start, then the config columns (compare puts the config first; on a narrow screen the results went
    off-screen)."""
    config = [c for c in columns if c in CONFIG_FIELDS]
    state = [c for c in STATE_COLUMNS if c in columns]
    head = [c for c in RUN_COLUMNS if c in columns]
    rest = [c for c in columns if c not in config and c not in state and c not in head]
    return [*head, *rest, *state, *config]


def collect(store: Path | Location, selection: Selection) -> ReportData:
    """Everything the page shows about the selected runs of the store (a SQLite file's path or a Location)."""
    location, fetch, find_sweep = _source(store)
    sweep = spec = None
    if selection.sweep:  # as compare --sweep: the sweep's current attempts, arms paired with its baseline arm
        from . import sweep as sweeps

        sweep = find_sweep(selection.sweep)
        spec = sweeps.from_record(sweep["spec"])
        fetch = sweeps.scoped_fetch(fetch, sweep["id"])
    raw = fetch_rows(fetch, selection.run_ids, selection.where, selection.tag, selection.last)
    table = build_table(raw, selection.all_columns)
    table.columns = ordered_columns(table.columns)
    paired = None
    if selection.baseline:
        paired = paired_table(raw, selection.baseline, selection.metric)
    elif sweep is not None and sweep["baseline"]:
        paired = sweeps.paired_with_verdicts(raw, sweep, selection.metric)
        arms = [spec.exp_name(arm.name) for arm in spec.arms]  # in the order the sweep file lists its arms
        paired.rows.sort(key=lambda r: arms.index(r["name"]) if r["name"] in arms else len(arms))
    ids = [row["id"] for row in raw]
    keys = [key for key, *_ in CURVES] + [TIME_KEY]
    # Curves and samples are the two big reads; SQLite does their work without the GIL, so they run beside the
    # rest (a Python call per sample row, to extract its answer, made the threads take turns: 1.2 s more).
    with ThreadPoolExecutor(max_workers=2) as pool:
        curves = pool.submit(bulk.curves_json, location, ids, keys)
        samples = pool.submit(bulk.samples_json, location, ids)
        runs, results, notes = bulk.runs(location, ids), bulk.results(location, ids), bulk.notes(location, ids)
        answers = answer_tables(*bulk.texts(location, ids))
        curves, samples = curves.result(), samples.result()
    shown = table_data(table)
    # a sweep's page hides its runs' own verdicts until asked (its arms' verdicts are the answer): never said once
    constant = said_once(shown, keep=RUN_COLUMNS + (("verdict",) if sweep is not None else ()))
    seed_groups: dict[str, int] = {}
    group_names: list[tuple[str, dict[str, Any]]] = []
    for row, data in zip(raw, shown["rows"], strict=True):
        key = _seed_key(row)
        if key not in seed_groups:
            seed_groups[key] = len(group_names)
            group_names.append((row["exp_name"], row["config"]))
        data.update(id=row["id"], steps=row["id"] in curves, arm=row.get("arm"), seed=_plain(row["config"].get("seed")),
                    seed_group=seed_groups[key])  # fmt: skip
    details = {row["id"]: run_detail(runs[row["id"]], row, results.get(row["id"], []), notes.get(row["id"], []))
               for row in raw}  # fmt: skip
    blobs = {rid: f'{{"curve":{curves.get(rid, "[]")},"samples":{samples.get(rid, "[]")}}}'
             for rid in ids if rid in curves or rid in samples}  # fmt: skip
    data = {
        "title": f"grpo-lab report: {selection.describe()}",
        "generated": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
        "version": __version__,
        "selection": selection.describe(),
        **{k: shown[k] for k in ("columns", "rows", "notes")},
        "constant": constant,
        "config_columns": [c for c in shown["columns"] if c in CONFIG_FIELDS],
        "seed_groups": _seed_group_labels(group_names),
        "paired": paired_view(paired) if paired else None,
        "answer": answer_data(paired, spec) if paired else None,
        "sweep": _sweep_data(sweep, spec),
        "runs": details,
        "curves": [list(c) for c in CURVES],
        "answers": answers,
    }
    return ReportData(data, blobs)


def _seed_group_labels(groups: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Seed groups are named by their runs' name; groups that share one also by the config values that tell them
    apart: ``grid · beta 0``, ``grid · beta 0.1``."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for name, config in groups:
        by_name.setdefault(name, []).append(config)
    telling = {}  # name -> the config keys whose values differ between its groups
    for name, configs in by_name.items():
        if len(configs) > 1:
            keys = {k for c in configs for k in c if k not in SEED_INDEPENDENT}
            telling[name] = sorted(k for k in keys if len({_key(c.get(k)) for c in configs}) > 1)
    return [" · ".join([name, *(f"{k} {_short(config.get(k))}" for k in telling[name])]) if name in telling else name
            for name, config in groups]  # fmt: skip


def _short(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(_plain(value))


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def paired_view(table: Table) -> dict[str, Any]:
    """The paired table as the page shows it: a column with the same cell on every row is said once above the
    table instead (``constant``); the verdict's detail is left out (it spells thresholds as fractions, beside
    differences in points); where the rows say their verdict in words, the words replace the criterion and the
    verdict."""
    data = table_data(table)
    columns, rows = list(data["columns"]), data["rows"]
    if "verdict_detail" in columns:  # its thresholds are fractions, its differences' column points: not both
        k = columns.index("verdict_detail")
        del columns[k]
        for r in rows:
            del r["cells"][k], r["sort"][k]
    in_words = any(r.get("verdict_words") for r in table.rows)
    if in_words:
        data["columns"] = columns = [c for c in columns if c not in ("criterion", "verdict", "verdict_detail")]
        columns += ["claim", "verdict"]
        for row, raw in zip(rows, table.rows, strict=True):
            words = [raw.get("claim") or "-", raw.get("verdict_words") or "-"]
            row["cells"] = [cell(table, raw, c) for c in columns[:-2]] + words
            row["sort"] = [_plain(raw.get(c)) for c in columns[:-2]] + [raw.get("claim"), raw.get("verdict")]
    data["columns"] = columns
    data["constant"] = said_once(data, keep=("name",))
    return data


def said_once(data: dict[str, Any], keep: tuple[str, ...] = ()) -> list[list[str]]:
    """Takes the columns that show the same cell on every row (of two or more) out of a table_data table; returns
    them as [column, cell] pairs, for the page to say once above the table."""
    columns, rows = data["columns"], data["rows"]
    constant: list[list[str]] = []
    if len(rows) < 2:
        return constant
    for k in reversed(range(len(columns))):
        if columns[k] not in keep and len({r["cells"][k] for r in rows}) == 1:
            constant.insert(0, [columns[k], rows[0]["cells"][k]])
            del columns[k]
            for r in rows:
                del r["cells"][k], r["sort"][k]
    return constant


def _points(table: Table) -> tuple[float, str]:
    """How the paired table's differences are shown: accuracies (fractions) as percentage points."""
    return (100.0, "pt") if "diff" in table.percent else (1.0, "")


def _number(value: float, scale: float, unit: str, sign: bool = True) -> str:
    text = f"{scale * value:{'+' if sign else ''}.1f}" if unit else f"{value:{'+' if sign else ''}.3g}"
    return f"{text} {unit}".rstrip()


def answer_data(table: Table, spec=None) -> dict[str, Any]:
    """The answer to a sweep (or a --baseline pairing), the forest plot's model: one row per arm with its mean
    paired difference and 95% interval (in points for accuracies), its claim and verdict in words, the smallest
    effect it could have detected and the pre-registered thresholds, where the rows carry them."""
    scale, unit = _points(table)
    prefix = f"{spec.name}_" if spec is not None else ""
    out = []
    for row in table.rows:
        diff, low, high = row.get("diff"), row.get("ci_low"), row.get("ci_high")
        mde = row.get("mde")
        thresholds = [t for t in row.get("thresholds") or [] if isinstance(t, int | float) and math.isfinite(t)]
        verdict, words = row.get("verdict"), row.get("verdict_words")
        if words:  # answer.verdict_words: the claim and what became of it, already
            said = words
        elif verdict:  # the verdict's own detail spells thresholds as fractions, beside differences in points
            said = f"{row.get('criterion') or 'its criterion'}: {verdict}"
            said += f" (p_holm {row['p_holm']:.2g})" if row.get("p_holm") is not None else ""
        elif row.get("p") is not None:
            said = f"p {row['p']:.3g}, p_holm {row.get('p_holm', row['p']):.3g} (no criterion)"
        else:
            said = row.get("note") or "no pairs"
        out.append({
            "name": row["name"],
            "label": row["name"].removeprefix(prefix) if prefix else row["name"],
            "n": row["n"],
            "diff": None if diff is None else scale * diff,
            "low": None if low is None else scale * low,
            "high": None if high is None else scale * high,
            "diff_text": "-" if diff is None else _number(diff, scale, unit),
            "interval_text": "-" if low is None or high is None
            else f"[{_number(low, scale, unit).removesuffix(' ' + unit)}, {_number(high, scale, unit)}]",
            "verdict": verdict,
            "said": said,
            "mde": scale * mde if isinstance(mde, int | float) and math.isfinite(mde) else None,
            "mde_text": _number(mde, scale, unit, sign=False) if isinstance(mde, int | float) and math.isfinite(mde)
            else None,
            "thresholds": sorted({scale * t for t in thresholds}),
        })  # fmt: skip
    compared = re.match(r"Paired by seed: (.+?) minus baseline (.+?) \(", table.title)
    metric, base = compared.groups() if compared else ("the metric", "the baseline")
    units = "in percentage points, " if unit else ""
    said = "its pre-registered claim and verdict" if any(r["verdict"] for r in out) else "its p-values"
    title = (f"{metric} minus {base}, paired by seed: the mean difference {units}its 95% t interval, and "
             f"{said}.")  # fmt: skip
    return {"title": title, "axis": f"{metric} minus baseline" + (" (percentage points)" if unit else ""),
            "rows": out}  # fmt: skip


def _sweep_data(sweep: dict[str, Any] | None, spec=None) -> dict[str, Any] | None:
    if sweep is None:
        return None
    # an older grpo-lab recorded a sweep's command with the password of its store's URL: never shown
    return {"id": sweep["id"], "name": sweep["name"], "hypothesis": sweep["hypothesis"],
            "command": without_password(sweep["command"]), "baseline": sweep["baseline"], "metric": sweep["metric"],
            "arms": [arm.name for arm in spec.arms] if spec is not None else []}  # fmt: skip


# --- page -------------------------------------------------------------------------------------------------------


def script_json(text: str) -> str:
    """JSON text made safe inside <script type="application/json">: <, > and & can only occur inside JSON
    strings, where their \\u escapes mean the same, so no ``</script>`` or ``<!--`` survives."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def plotly_js() -> str:
    """plotly.js, vendored (see grpo_lab/vendor/README.md), safe to inline in a <script> element."""
    text = (Path(__file__).parent / "vendor" / PLOTLY_JS["file"]).read_text(encoding="utf-8")
    return re.sub(r"</(script)", r"<\\/\1", text, flags=re.I)


def render(report: ReportData) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined
    from markupsafe import Markup

    env = Environment(loader=FileSystemLoader(str(templates_dir())), autoescape=True, undefined=StrictUndefined)
    data = json.dumps(report.data, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    return env.get_template(TEMPLATE).render(
        title=report.data["title"],
        data=Markup(script_json(data)),
        runs=[(rid, Markup(script_json(text))) for rid, text in report.runs.items()],
        plotly=Markup(plotly_js()),
    )


def write_report(store: Path | Location, selection: Selection | None = None, out: Path = DEFAULT_OUT) -> Built:
    """Build the report of the store (a SQLite file's path or a Location) and write it (atomically) to ``out``."""
    started = time.perf_counter()
    report = collect(store, selection or Selection())
    html = render(report).encode()
    try:
        write_atomic(out, html)
    except OSError as exc:
        raise GrpoLabError(f"cannot write the report at {exc.filename or out}: {exc.strerror or exc}; choose "
                           "another --out") from None  # fmt: skip
    return Built(out, len(report.data["rows"]), len(html), time.perf_counter() - started)
