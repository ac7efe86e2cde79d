"""The research journal: one Markdown entry per run, rendered from the store through Jinja2 templates.

Generated entries sit between HTML comments that carry the run ID, so re-rendering replaces each
entry in place and leaves everything a person wrote outside them untouched. User text (names,
hypotheses, notes, commands) reaches a template as one line with the entry markers defused, so it can
never forge an entry's structure. Templates render in Jinja's immutable sandbox: a template that
reaches for Python internals is refused. The journal and its plots are staged as temporary files and
put in place together, only after every entry has rendered: a bad template, an unwritable --out or an
interruption changes nothing, and the next render removes temporary files a killed one left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from . import answer, paths
from . import metrics as metric_names
from .diagnostics import diagnose
from .errors import GrpoLabError
from .provenance import without_password
from .suites import tier_rank
from .text import printable

DEFAULT_OUT = Path("journal") / "research_journal.md"
DEFAULT_TEMPLATE = "default"
REPORT = "report.html"  # `grpo-lab report` written beside the journal: entries link to their run in it
BEGIN = "<!-- grpo-lab:begin {id} -->"
END = "<!-- grpo-lab:end {id} -->"
BLOCK = re.compile(r"^<!-- grpo-lab:begin (\w+) -->\n.*?^<!-- grpo-lab:end \1 -->\n?", re.S | re.M)
MARKER = "<!-- grpo-lab:"  # what only merge() may write at the start of a line
TEMP_TAG = ".grpo-lab-tmp-"  # temporary files: .NAME.grpo-lab-tmp-PID-RANDOM
HEADER = (
    "# Research journal\n\n"
    "Entries between `grpo-lab:begin` / `grpo-lab:end` markers are written by `grpo-lab journal render` and "
    "replaced when it runs again. Anything outside them is yours and is kept as it is.\n"
)


class TemplateProblem(GrpoLabError):
    pass


def templates_dir() -> Path:
    """templates/ is installed inside the package; an editable install finds it at the top of the repo."""
    packaged = resources.files("grpo_lab").joinpath("templates")
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "templates"


def template_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix or os.sep in name_or_path:
        if paths.is_dir(path):
            raise TemplateProblem(f"template {name_or_path} is a directory; give a template file (.md.j2)")
        if not paths.is_file(path):
            what = "is not a regular file" if paths.exists(path) else "does not exist"
            raise TemplateProblem(f"template {name_or_path} {what}; give a template file (.md.j2)")
        return path
    path = templates_dir() / f"{name_or_path}.md.j2"
    if not path.is_file():
        names = sorted(p.name.removesuffix(".md.j2") for p in templates_dir().glob("*.md.j2"))
        raise TemplateProblem(f"no template named {name_or_path!r}; built-in: {', '.join(names)}; or give a file path")
    return path


# The largest string, list or number a template may build with * or ** (a range is capped alike by Jinja).
MAX_TEMPLATE_VALUE = 100_000


def _sandbox_class():
    from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

    class TemplateSandbox(ImmutableSandboxedEnvironment):
        """Jinja's immutable sandbox (no internals, no mutation of the context), and no ``*`` or ``**`` that
        builds a value too large to hold (``"x" * 10**10``, ``9 ** 9 ** 9``)."""

        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context, operator, left, right):
            ints = isinstance(left, int) and isinstance(right, int)
            if operator == "**" and ints and right > 0 and abs(left).bit_length() * right > 4 * MAX_TEMPLATE_VALUE:
                raise SecurityError(f"{left} ** {right} is too large for a template")
            for seq, count in ((left, right), (right, left)):
                sized = operator == "*" and isinstance(seq, str | list | tuple) and isinstance(count, int)
                if sized and len(seq) * count > MAX_TEMPLATE_VALUE:
                    raise SecurityError(f"a sequence of {len(seq)} repeated {count} times is too large for a template")
            return super().call_binop(context, operator, left, right)

    return TemplateSandbox


def load_template(name_or_path: str):
    from jinja2 import FileSystemLoader, StrictUndefined, TemplateSyntaxError

    path = template_path(name_or_path)
    env = _sandbox_class()(
        loader=FileSystemLoader(str(path.parent)),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["pct"] = metric_names.pct
    try:
        return env.get_template(path.name)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"template {path} line {exc.lineno}: {exc.message}") from None
    except UnicodeDecodeError:
        raise TemplateProblem(f"template {path} is not UTF-8 text; give a Jinja2 template file") from None
    except OSError as exc:
        raise TemplateProblem(f"cannot read template {path}: {exc.strerror or exc}") from None


@dataclass
class Selection:
    run_ids: list[str] | None = None
    since: str | None = None  # an ISO date or datetime
    tag: str | None = None


def select_runs(store, selection: Selection):
    views = [store.find_run(rid) for rid in selection.run_ids] if selection.run_ids else store.runs()
    if selection.since is not None:
        try:
            since = datetime.fromisoformat(selection.since)
        except ValueError:
            raise GrpoLabError(f"--since {selection.since!r} is not a date; use YYYY-MM-DD") from None
        views = [v for v in views if _started(v.run).replace(tzinfo=None) >= since.replace(tzinfo=None)]
    if selection.tag:
        views = [v for v in views if selection.tag in v.tags]
    return sorted(views, key=lambda v: (v.run.started_at, v.run.id))


def _started(run) -> datetime:
    return datetime.fromisoformat(run.started_at)


OLD_RUN_FOOTNOTE = (
    "recorded before grpo-lab held suite problems out of training sets: the run (and the built-in tiny model "
    "it may have started from) could have trained on suite problems, so its suite figures are not held-out"
)


def entry_context(store, view, plot: str | None, report: str | None = None) -> dict[str, Any]:
    """Everything a template may use about one run (as the ``run`` variable); ``report``: the report page
    beside the journal, when there is one."""
    run, values = view.run, view.metrics
    results = store.results(run.id)
    notes = store.notes(run.id)

    def counts(split: str, stage: str, dimension: str = "overall", group: str = ""):
        for r in results:
            if (r.split, r.stage, r.dimension, r.grp) == (split, stage, dimension, group):
                return r
        return None

    def accuracy(row) -> float | None:
        return row.correct / row.total if row and row.total else None

    def evaluated(split: str) -> dict[str, Any] | None:
        after = counts(split, "after")
        if after is None:
            return None
        before = accuracy(counts(split, "before"))
        return {"split": split, "accuracy": accuracy(after), "correct": after.correct, "total": after.total,
                "before": before, "moved": moved(before, accuracy(after))}  # fmt: skip

    def group_rows(split: str) -> list[dict[str, Any]]:
        dims = sorted(
            {(r.dimension, r.grp) for r in results if r.split == split and r.dimension in ("operation", "difficulty")},
            key=lambda dg: (dg[0] != "operation", tier_rank(dg[1])),
        )
        return [{"label": f"{split} {dim} {grp}", "dimension": dim, "name": grp,
                 "before": accuracy(counts(split, "before", dim, grp)),
                 "after": accuracy(counts(split, "after", dim, grp))} for dim, grp in dims]  # fmt: skip

    suites = []
    for name in metric_names.suites_of(values) or sorted({r.split for r in results} - {"train", "held_out"}):
        entry = evaluated(name)
        if entry is None:
            continue
        overlap = values.get(metric_names.overlap(name))
        entry.update(name=name, overlap=None if overlap is None else int(overlap), groups=group_rows(name),
                     operations=[{"name": g["name"], "accuracy": g["after"]} for g in group_rows(name)
                                 if g["dimension"] == "operation"])  # fmt: skip
        suites.append(entry)
    held_out, train = evaluated("held_out"), evaluated("train")
    groups = []
    for name, entry in [("held_out", held_out), ("train", train)] + [(e["name"], e) for e in suites]:
        if entry is None:
            continue
        groups.append({"label": f"{name} overall", "before": entry["before"], "after": entry["accuracy"]})
        if name not in metric_names.OWN_SPLITS:
            groups += entry["groups"]
    by_kind = {kind: [{"kind": n.kind, "text": n.text, "seq": n.seq, "created_at": n.created_at}
                      for n in notes if n.kind == kind] for kind in ("result", "learning", "comment")}  # fmt: skip
    verdict = None
    if run.verdict:
        words = answer.run_claim(run.criteria)  # what was tested, in words, beside the verdict
        verdict = {"status": run.verdict, "detail": run.verdict_detail or "", "claim": words,
                   "sentence": (f"Verdict unchecked ({run.verdict_detail})" if run.verdict == "unchecked"
                                else f"Hypothesis ({words}) {run.verdict}: {run.verdict_detail}" if words
                                else f"Hypothesis {run.verdict}: {run.verdict_detail}")}  # fmt: skip
    return defuse(
        {
            "id": run.id,
            "kind": run.kind,
            "exp_name": run.exp_name,
            "started": _started(run).strftime("%Y-%m-%d_%H:%M"),
            "started_at": run.started_at,
            "status": run.status,
            "error": run.error,
            "hypothesis": run.hypothesis,
            "expected": run.expected,
            "criteria": run.criteria,
            "verdict": verdict,
            "command": run.command,
            "resolved_command": run.resolved_command,
            "tags": view.tags,
            "config": view.config,
            "metrics": values,
            "held_out": held_out,
            "suites": suites,
            "suites_disjoint": bool(run.suites_disjoint),
            "old_run_footnote": None if run.suites_disjoint or not suites else OLD_RUN_FOOTNOTE,
            "train": train,
            "final_reward": values.get("final_reward"),
            "groups": groups,
            "diagnostics": [asdict(finding) for finding in diagnose(view.config, values)],
            "result_notes": by_kind["result"],
            "learnings": by_kind["learning"],
            "comments": by_kind["comment"],
            "plot": plot,
            "report": f"{report}#run={run.id}" if report else None,
            "wandb": {"mode": run.wandb_mode, "url": run.wandb_url, "dir": run.wandb_dir},
            "task": task_line(run.task),
            "rerun_of": run.rerun_of,
            # a run from a dirty tree says so, and whether its diff was kept (None: a clean tree, or no git at all)
            "code": code_text(run) if run.git_dirty else None,
            "duration_s": run.duration_s,
        }
    )


def task_line(recorded: str | None) -> str | None:
    """Which task and rewards a run trained with, in words, when not only the built-in ones (None then):
    ``sort-numbers v1 (examples/sort_task.py, sha256 fa46d23d3fef); rewards: task (sorted_reward, ...)``."""
    import json

    if not recorded:
        return None
    data = json.loads(recorded)
    task, rewards = data.get("task") or {}, data.get("rewards") or []
    custom = [r for r in rewards if r.get("source")]
    if task.get("source", "").startswith("grpo_lab/") and not custom:
        return None

    def code(info: dict) -> str:
        digest = f", sha256 {info['sha256'][:12]}" if info.get("sha256") else ""
        return f"{info.get('source', '?')}{digest}"

    terms = []
    for r in rewards:
        weight = "" if r.get("weight", 1.0) == 1.0 else f" x{r['weight']:g}"
        if r.get("source"):
            terms.append(f"{r['name']} ({code(r)}){weight}")
        elif r.get("functions"):
            terms.append(f"the task's ({', '.join(r['functions'])}){weight}")
        else:
            terms.append(f"{r['name']}{weight}")
    return f"{task.get('name', '?')} v{task.get('version', '?')} ({code(task)}); rewards: {', '.join(terms)}"


def moved(before: float | None, after: float | None) -> str | None:
    """How an accuracy changed in training, as the entry says it: ``up from``, ``down from``, ``unchanged from``
    (equal as the entry prints them, to 0.1%)."""
    if before is None or after is None:
        return None
    if metric_names.pct(before) == metric_names.pct(after):
        return "unchanged from"
    return "up from" if after > before else "down from"


def code_text(run) -> str:
    from .reproduce import code_of, describe

    text = describe(code_of(run))
    return text + (f" (`grpo-lab show {run.id} --diff`)" if run.code_diff is not None else "")


def user_text(text: str) -> str:
    """Text from a run or a person as an entry may show it: on one line (every line break becomes a space) and
    with ``<!--`` defused, so it can neither start a line of its own (a heading, a table row, an entry marker)
    nor open an HTML comment that hides what follows it, and with no other control character as itself (a
    terminal shows a journal too)."""
    return printable(" ".join(text.splitlines())).replace("<!--", "&lt;!--")


def defuse(value: Any) -> Any:
    """``user_text`` applied to every string in a template's context."""
    if isinstance(value, str):
        return user_text(value)
    if isinstance(value, dict):
        return {k: defuse(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [defuse(v) for v in value]
    return value


def render_entry(template, context: dict[str, Any], variable: str = "run") -> str:
    try:
        text = template.render(**context) if variable == "sweep" else template.render(run=context)
    except Exception as exc:  # undefined variables, bad filters, errors raised inside the template
        line = next(
            (f.lineno for f in reversed(traceback.extract_tb(exc.__traceback__)) if f.filename == template.filename),
            "?",
        )
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        raise TemplateProblem(f"template {template.filename} line {line}: {message}") from None
    # Only merge() writes entry markers: a template's own are defused like user text.
    lines = text.strip("\n").split("\n")
    defused = "&lt;" + MARKER[1:]
    return "\n".join(ln.replace(MARKER, defused, 1) if ln.lstrip().startswith(MARKER) else ln for ln in lines) + "\n"


def merge(existing: str | None, entries: dict[str, str], order: list[str]) -> str:
    """Replace each run's generated block in place and append new ones; keep all other text."""
    text = existing if existing is not None else HEADER
    blocks = {rid: f"{BEGIN.format(id=rid)}\n{entries[rid]}{END.format(id=rid)}\n" for rid in entries}
    present = set()

    def replace(match: re.Match) -> str:
        rid = match.group(1)
        if rid in blocks:
            present.add(rid)
            return blocks[rid]
        return match.group(0)

    text = BLOCK.sub(replace, text)
    new = [rid for rid in order if rid in blocks and rid not in present]
    if new:
        if not text.endswith("\n"):
            text += "\n"
        text += "".join("\n" + blocks[rid] for rid in new)
    return text


def _stage(path: Path, data: bytes) -> Path:
    """``data`` in a temporary file beside ``path``, with the mode ``path`` has (or a new file would get)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{TEMP_TAG}{os.getpid()}-", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _mode_for(path))  # mkstemp makes 0600; keep the file's own mode
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def write_files(files: dict[Path, bytes]) -> None:
    """Write every file or none: each is staged as a temporary file beside it, then all are renamed into place,
    in order. On any failure or interruption the temporary files and the folders made for them are removed."""
    staged: dict[Path, Path] = {}
    made: list[Path] = []
    done = False
    try:
        for path, data in files.items():
            missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
            path.parent.mkdir(parents=True, exist_ok=True)
            made += reversed(missing)
            staged[path] = _stage(path, data)
        for path, tmp in staged.items():
            os.replace(tmp, path)
        done = True
    finally:
        if not done:
            for tmp in staged.values():
                tmp.unlink(missing_ok=True)
            for folder in reversed(made):
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only if still empty


def write_atomic(path: Path, text: str | bytes) -> None:
    write_files({path: text.encode() if isinstance(text, str) else text})


def _mode_for(path: Path) -> int:
    """The mode a rewritten file keeps: its current one, or what the umask gives a new file."""
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_TEMP = re.compile(rf"^\..+{re.escape(TEMP_TAG)}(?P<pid>\d+)-.*\.tmp$")
STALE_TEMP_SECONDS = 24 * 3600


def sweep_temporary_files(folder: Path) -> list[Path]:
    """Remove temporary files that a render killed before it could clean up left in ``folder``: those of a
    process that is gone, or older than a day (a process on another host, sharing the folder)."""
    from .store.sqlite_read import pid_alive

    removed = []
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        m = _TEMP.match(path.name)
        if not m or not path.is_file():
            continue
        with contextlib.suppress(OSError):
            if not pid_alive(int(m["pid"])) or time.time() - path.stat().st_mtime > STALE_TEMP_SECONDS:
                path.unlink()
                removed.append(path)
    return removed


def read_journal(out: Path, store: Path | None = None) -> str | None:
    """The journal's current text (None when there is none yet), after checking ``out`` can be one."""
    paths.check_target("--out", out, f"the journal file, e.g. --out {out / DEFAULT_OUT.name}", store=store)
    if not paths.exists(out):
        return None
    try:
        return out.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise GrpoLabError(
            f"--out {out} is not UTF-8 text, so not a journal (left as it is); choose another --out"
        ) from None
    except OSError as exc:
        raise GrpoLabError(f"cannot read --out {out}: {exc.strerror or exc}") from None


@dataclass
class RenderReport:
    path: Path | None
    rendered: list[str]
    text: str
    plots: list[Path]


def sweep_context(store, record) -> dict[str, Any]:
    """Everything the sweep template may use: the sweep, its arms with their verdicts, and compare's tables."""
    from . import compare
    from . import sweep as sw

    spec = sw.from_record(record.spec)
    runs = store.sweep_runs(record.id)
    rows = sw.compare_rows(store, runs)
    arms_table = compare.to_markdown(compare.build_table(rows, group_by_seed=True)) if rows else "(no runs yet)"
    paired, verdicts, headline, model = None, {}, [], None
    if spec.baseline and any(r["arm"] != spec.baseline for r in rows) and rows:
        table = sw.paired_with_verdicts(rows, record)
        model = answer.forest(table.rows, table.points, spec.metric or "", spec.baseline)
        for r in model.rows:
            r.arm = r.arm.removeprefix(f"{spec.name}_")
        headline = [headline_line(r, model) for r in model.rows]
        paired = compare.to_markdown(compare.same_on_every_row(table))
        verdicts = {r["name"].removeprefix(f"{spec.name}_"): (r["verdict"], r.get("verdict_words") or "")
                    for r in table.rows}  # fmt: skip
    arms = []
    for arm in spec.arms:
        flags = " ".join(f"--{k} {v}" for k, v in arm.flags.items())
        verdict = verdicts.get(arm.name, ("baseline" if arm.name == spec.baseline else "unchecked", ""))
        arms.append({"name": arm.name, "flags": flags, "hypothesis": arm.hypothesis, "expected": arm.expected,
                     "criteria": arm.criteria, "compare": arm.compare, "verdict": verdict[0],
                     "verdict_detail": verdict[1]})  # fmt: skip
    created = datetime.fromisoformat(record.created_at).strftime("%Y-%m-%d_%H:%M")
    return {
        "sweep": {
            "id": record.id,
            "name": spec.name,
            "hypothesis": spec.hypothesis,
            "command": without_password(record.command),  # an older grpo-lab recorded a sweep's URL password
            "created": created,
            "seeds": spec.seeds,
            "preset": spec.preset,
            "base": spec.base,
            "baseline": spec.baseline,
            "metric": spec.metric or "the first suite",
            "arms": spec.arms,
            "finished": sum(r.status == "finished" for r in runs),
            "total": len(runs),
        },  # fmt: skip
        "arms": arms,
        "arms_table": arms_table.strip(),
        "paired_table": paired.strip() if paired else None,
        "headline": headline,
        "forest": None,  # set by render: the forest plot's file, beside the journal
        "forest_model": model,
        "power": json.loads(record.power) if getattr(record, "power", None) else None,
        "underpowered": bool(getattr(record, "underpowered", False)),
    }


def headline_line(row, model) -> str:
    """One arm of a sweep's answer as a line: ``partial: +1.4 pt [+0.5, +2.3]: better than baseline: not shown,
    p_holm 0.19; could have detected >= 2.1 pt``."""
    unit = f" {model.unit}" if model.unit else ""
    interval = f" [{model.shown(row.low)}, {model.shown(row.high)}]" if row.low is not None else ""
    could = ""
    if row.mde is not None:
        could = f"; could have detected >= {abs(row.mde) * (100 if model.points else 1):.2g}{unit}"
    return f"{row.arm}: {model.shown(row.diff)}{unit}{interval}: {row.words}{could}"


def forest_png(model) -> bytes:
    """The sweep's forest plot: each arm's difference from the baseline and its 95% interval on one axis, zero and
    the pre-registered thresholds drawn, the verdict in words at the right (answer.forest's model)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale = 100 if model.points else 1
    rows = list(reversed(model.rows))  # the first arm on top
    fig, (ax, words) = plt.subplots(1, 2, figsize=(10, 0.5 * len(rows) + 1.6), dpi=80, sharey=True,
                                    gridspec_kw={"width_ratios": [3, 2]})  # fmt: skip
    colors = {"confirmed": "tab:green", "rejected": "tab:red"}
    for y, r in enumerate(rows):
        color = colors.get(r.status, "tab:gray")
        if r.low is not None and r.high is not None:
            ax.plot([r.low * scale, r.high * scale], [y, y], color=color, lw=2)
        if r.diff is not None:
            ax.plot([r.diff * scale], [y], "o", color=color)
        words.text(0, y, r.words, va="center", fontsize=8)
    ax.axvline(0, color="black", lw=1)
    for t in model.thresholds:
        ax.axvline(t * scale, color="tab:orange", lw=1, ls="--")
    ax.set_yticks(range(len(rows)), [r.arm for r in rows])
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlabel(f"{model.metric}, arm minus baseline" + (" (points)" if model.points else ""))
    ax.set_title("Difference and 95% interval, paired by seed", fontsize=10)
    words.set_axis_off()
    words.set_title("verdict (pre-registered criterion)", fontsize=10, loc="left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def render(
    store,
    selection: Selection | None = None,
    out: Path = DEFAULT_OUT,
    template: str = DEFAULT_TEMPLATE,
    to_stdout: bool = False,
    plots: bool = True,
    sweep: str | None = None,
) -> RenderReport:
    """Render the selected runs; write the journal (and plots) unless ``to_stdout``. With ``sweep`` (an ID or
    name) the selection is that sweep's runs, below one section about the sweep itself."""
    tmpl = load_template(template)
    existing = None if to_stdout else read_journal(out, store.location.path)

    entries, pngs, first = {}, {}, []
    if sweep is not None:
        record = store.find_sweep(sweep)
        block = f"sweep_{record.id}"
        context = sweep_context(store, record)
        if context["forest_model"] is not None and plots:
            context["forest"] = f"assets/{block}.png"
            if not to_stdout:
                pngs[out.parent / "assets" / f"{block}.png"] = forest_png(context["forest_model"])
        entries[block] = render_entry(load_template("sweep"), context, variable="sweep")
        first = [block]
        ids = [r.id for r in store.sweep_runs(record.id)]
        selection = Selection(ids or ["-"], (selection or Selection()).since, (selection or Selection()).tag)
    views = select_runs(store, selection or Selection())
    assets = out.parent / "assets"
    report = REPORT if (out.parent / REPORT).is_file() else None
    for view in views:
        plot_rel = f"assets/{view.run.id}.png" if plots else None
        entries[view.run.id] = render_entry(tmpl, entry_context(store, view, plot_rel, report))
        if plots and not to_stdout:
            pngs[assets / f"{view.run.id}.png"] = plot_png(store, view)
    order = [*first, *(v.run.id for v in views)]
    if to_stdout:
        return RenderReport(None, order, "\n".join(entries[rid] for rid in order), [])
    text = merge(existing, entries, order)
    for folder in (out.parent, assets):
        sweep_temporary_files(folder)
    changed = {path: data for path, data in pngs.items() if not path.is_file() or path.read_bytes() != data}
    files = dict(changed)  # plots first: the journal never points at a plot that is not there yet
    if text != existing:
        files[out] = text.encode()
    try:
        write_files(files)
    except OSError as exc:
        where = exc.filename or out
        raise GrpoLabError(
            f"cannot write the journal at {where}: {exc.strerror or exc}; choose another --out"
        ) from None
    return RenderReport(out, order, text, list(changed))


def plot_figure(store, view):
    """Reward and frac_reward_zero_std per step, the KL per step, and accuracy per operation before/after on
    every evaluated suite (the run's own held-out split when it has none), side by side, each with a legend. An
    evaluation-only run (no training steps) gets its accuracy panels alone, one bar per group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = store.steps(view.run.id)
    results = store.results(view.run.id)
    sets = metric_names.suites_of(view.metrics) or ["held_out"]
    trained = bool(steps) or view.run.kind != "eval"
    curves = 2 if trained else 0
    fig, axes = plt.subplots(1, curves + len(sets), figsize=(3.9 * (curves + len(sets)), 3.6), dpi=80, squeeze=False)
    axes = list(axes[0])
    bar_axes = axes[curves:]
    xs = [s for s, _ in steps]

    def series(key):
        return [float("nan") if m.get(key) is None else m[key] for _, m in steps]

    if trained:
        curve, kl_ax = axes[0], axes[1]
        if steps:
            lines = curve.plot(xs, series("reward"), label="reward", color="tab:blue")
            twin = curve.twinx()
            lines += twin.plot(xs, series("frac_reward_zero_std"), color="tab:orange", label="frac_reward_zero_std")
            twin.set_ylim(0, 1)
            twin.set_ylabel("frac_reward_zero_std")
            curve.set_ylabel("train reward")
            curve.set_xlabel("step")
            curve.legend(lines, [line.get_label() for line in lines], loc="best", fontsize=8)
        else:
            curve.text(0.5, 0.5, "no training steps", ha="center", va="center")
            curve.set_axis_off()
        curve.set_title("training curve")
        if any(m.get("kl") is not None for _, m in steps):
            kl_ax.plot(xs, series("kl"), color="tab:purple", label="KL")
            kl_ax.set_xlabel("step")
            kl_ax.legend(loc="upper left", fontsize=8)
        else:
            kl_ax.text(0.5, 0.5, "no KL logged", ha="center", va="center")
            kl_ax.set_axis_off()
        kl_ax.set_title("KL")
    for ax, split in zip(bar_axes, sets, strict=True):
        rows = [r for r in results if r.split == split and r.dimension in ("overall", "operation")]
        labels = sorted({"overall" if r.dimension == "overall" else r.grp for r in rows},
                        key=lambda g: (g != "overall", g))  # fmt: skip
        stages = [st for st in metric_names.STAGES if any(r.stage == st for r in rows)]
        bars = ((-0.2, "before", "tab:gray"), (0.2, "after", "tab:green")) if len(stages) > 1 else \
            ((0.0, stages[0] if stages else "after", "tab:green"),)  # fmt: skip
        for offset, stage, color in bars:
            acc = {("overall" if r.dimension == "overall" else r.grp): r.correct / r.total
                   for r in rows if r.stage == stage and r.total}  # fmt: skip
            ax.bar([i + offset for i in range(len(labels))], [acc.get(g, 0) for g in labels],
                   width=0.4 if len(bars) > 1 else 0.6, label=stage, color=color)  # fmt: skip
        ax.set_xticks(range(len(labels)), labels)
        ax.set_ylim(0, 1)
        ax.set_title(f"{split} accuracy")
        if len(bars) > 1:
            ax.legend(loc="upper right", fontsize=8)
    fig.suptitle(f"{view.run.exp_name} ({view.run.id})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_png(store, view) -> bytes:
    """plot_figure as PNG bytes (no timestamp in the metadata, so an unchanged run gives the same bytes)."""
    import io

    import matplotlib.pyplot as plt

    fig = plot_figure(store, view)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
