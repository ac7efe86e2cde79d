"""The report: one self-contained HTML file for looking at runs in a browser, offline, opened from disk.

It holds compare's table of the selected runs (same columns, same formatting, diff-only by default),
each run's training curves, accuracy per split and group before -> after, the sample completions
stored per step, and each run's intent and the command that reproduces it. The page layout and its
small script live in ``templates/report.html.j2``; the data is embedded as JSON: one blob parsed
when the page opens (table and run details) and one per run (curve and samples), parsed only when
that run is plotted or opened. Charts are drawn by plotly.js, vendored in ``grpo_lab/vendor``.

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
from .compare import Table, build_table, cell, fetch_rows, paired_table
from .diagnostics import diagnose
from .errors import GrpoLabError
from .journal import templates_dir, write_atomic
from .provenance import without_password
from .rewards import extract_answer
from .store import bulk, sqlite_read
from .suites import tier_rank
from .tasks import task_type_of

DEFAULT_OUT = Path("report.html")
TEMPLATE = "report.html.j2"
# (step metric as TRL logs it, label on the page)
CURVES = (
    ("reward", "reward"),
    ("reward_std", "reward std"),
    ("frac_reward_zero_std", "frac_reward_zero_std"),
    ("kl", "KL"),
    ("loss", "loss"),
    ("grad_norm", "grad norm"),
    ("learning_rate", "learning rate"),
)
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
        "columns": table.columns,
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


def collect(path: Path, selection: Selection) -> ReportData:
    """Everything the page shows about the selected runs of the SQLite store at ``path``."""
    fetch, sweep = _fetch(path), None
    if selection.sweep:  # as compare --sweep: the sweep's current attempts, arms paired with its baseline arm
        from . import sweep as sweeps

        sweep = sqlite_read.find_sweep(path, selection.sweep)
        fetch = sweeps.scoped_fetch(fetch, sweep["id"])
    raw = fetch_rows(fetch, selection.run_ids, selection.where, selection.tag, selection.last)
    table = build_table(raw, selection.all_columns)
    paired = None
    if selection.baseline:
        paired = paired_table(raw, selection.baseline, selection.metric)
    elif sweep is not None and sweep["baseline"]:
        paired = sweeps.paired_with_verdicts(raw, sweep, selection.metric)
    ids = [row["id"] for row in raw]
    keys = [key for key, _ in CURVES]
    # Curves and samples are the two big reads; SQLite does their work without the GIL, so they run beside the
    # rest (a Python call per sample row, to extract its answer, made the threads take turns: 1.2 s more).
    with ThreadPoolExecutor(max_workers=2) as pool:
        curves = pool.submit(bulk.curves_json, path, ids, keys)
        samples = pool.submit(bulk.samples_json, path, ids)
        runs, results, notes = bulk.runs(path, ids), bulk.results(path, ids), bulk.notes(path, ids)
        answers = answer_tables(*bulk.texts(path, ids))
        curves, samples = curves.result(), samples.result()
    shown = table_data(table)
    for row, data in zip(raw, shown["rows"], strict=True):
        data.update(id=row["id"], steps=row["id"] in curves)
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
        "paired": table_data(paired) if paired else None,
        "sweep": _sweep_data(sweep),
        "runs": details,
        "curves": [list(c) for c in CURVES],
        "answers": answers,
    }
    return ReportData(data, blobs)


def _sweep_data(sweep: dict[str, Any] | None) -> dict[str, Any] | None:
    if sweep is None:
        return None
    # an older grpo-lab recorded a sweep's command with the password of its store's URL: never shown
    return {"id": sweep["id"], "name": sweep["name"], "hypothesis": sweep["hypothesis"],
            "command": without_password(sweep["command"])}  # fmt: skip


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


def write_report(path: Path, selection: Selection | None = None, out: Path = DEFAULT_OUT) -> Built:
    """Build the report of the SQLite store at ``path`` and write it (atomically) to ``out``."""
    started = time.perf_counter()
    report = collect(path, selection or Selection())
    html = render(report).encode()
    try:
        write_atomic(out, html)
    except OSError as exc:
        raise GrpoLabError(f"cannot write the report at {exc.filename or out}: {exc.strerror or exc}; choose "
                           "another --out") from None  # fmt: skip
    return Built(out, len(report.data["rows"]), len(html), time.perf_counter() - started)
