"""The research journal: one Markdown entry per run, rendered from the store through Jinja2 templates.

Generated entries sit between HTML comments that carry the run ID, so re-rendering replaces each
entry in place and leaves everything a person wrote outside them untouched. The journal file is
written atomically, and only after every entry has rendered: a bad template changes nothing.
"""

from __future__ import annotations

import os
import re
import tempfile
import traceback
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from . import metrics as metric_names
from .diagnostics import diagnose
from .errors import GrpoLabError
from .suites import tier_rank

DEFAULT_OUT = Path("journal") / "research_journal.md"
DEFAULT_TEMPLATE = "default"
BEGIN = "<!-- grpo-lab:begin {id} -->"
END = "<!-- grpo-lab:end {id} -->"
BLOCK = re.compile(r"<!-- grpo-lab:begin (\w+) -->\n.*?<!-- grpo-lab:end \1 -->\n?", re.S)
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
        if not path.is_file():
            raise TemplateProblem(f"template {name_or_path} does not exist")
        return path
    path = templates_dir() / f"{name_or_path}.md.j2"
    if not path.is_file():
        names = sorted(p.name.removesuffix(".md.j2") for p in templates_dir().glob("*.md.j2"))
        raise TemplateProblem(f"no template named {name_or_path!r}; built-in: {', '.join(names)}; or give a file path")
    return path


def load_template(name_or_path: str):
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateSyntaxError

    path = template_path(name_or_path)
    env = Environment(
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


@dataclass
class Selection:
    run_ids: list[str] | None = None
    since: str | None = None  # an ISO date or datetime
    tag: str | None = None


def select_runs(store, selection: Selection):
    views = [store.find_run(rid) for rid in selection.run_ids] if selection.run_ids else store.runs()
    if selection.since:
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


def entry_context(store, view, plot: str | None) -> dict[str, Any]:
    """Everything a template may use about one run (as the ``run`` variable)."""
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
        return {"split": split, "accuracy": accuracy(after), "correct": after.correct, "total": after.total,
                "before": accuracy(counts(split, "before"))}  # fmt: skip

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
    by_kind = {kind: [n for n in notes if n.kind == kind] for kind in ("result", "learning", "comment")}
    verdict = None
    if run.verdict:
        verdict = {"status": run.verdict, "detail": run.verdict_detail or "",
                   "sentence": (f"Verdict unchecked ({run.verdict_detail})" if run.verdict == "unchecked"
                                else f"Hypothesis {run.verdict}: {run.verdict_detail}")}  # fmt: skip
    return {
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
        "diagnostics": diagnose(view.config, values),
        "result_notes": by_kind["result"],
        "learnings": by_kind["learning"],
        "comments": by_kind["comment"],
        "plot": plot,
        "wandb": {"mode": run.wandb_mode, "url": run.wandb_url, "dir": run.wandb_dir},
        "duration_s": run.duration_s,
    }


def render_entry(template, context: dict[str, Any]) -> str:
    try:
        text = template.render(run=context)
    except Exception as exc:  # undefined variables, bad filters, errors raised inside the template
        line = next(
            (f.lineno for f in reversed(traceback.extract_tb(exc.__traceback__)) if f.filename == template.filename),
            "?",
        )
        message = getattr(exc, "message", None) or str(exc)
        raise TemplateProblem(f"template {template.filename} line {line}: {message}") from None
    return text.strip("\n") + "\n"


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


def write_atomic(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode() if isinstance(text, str) else text
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, _mode_for(path))  # mkstemp makes 0600; keep the file's own mode
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _mode_for(path: Path) -> int:
    """The mode a rewritten file keeps: its current one, or what the umask gives a new file."""
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@dataclass
class RenderReport:
    path: Path | None
    rendered: list[str]
    text: str
    plots: list[Path]


def render(
    store,
    selection: Selection | None = None,
    out: Path = DEFAULT_OUT,
    template: str = DEFAULT_TEMPLATE,
    to_stdout: bool = False,
    plots: bool = True,
) -> RenderReport:
    """Render the selected runs; write the journal (and plots) unless ``to_stdout``."""
    tmpl = load_template(template)
    views = select_runs(store, selection or Selection())
    assets = out.parent / "assets"
    entries, pngs = {}, {}
    for view in views:
        plot_rel = f"assets/{view.run.id}.png" if plots else None
        entries[view.run.id] = render_entry(tmpl, entry_context(store, view, plot_rel))
        if plots and not to_stdout:
            pngs[assets / f"{view.run.id}.png"] = plot_png(store, view)
    order = [v.run.id for v in views]
    if to_stdout:
        return RenderReport(None, order, "\n".join(entries[rid] for rid in order), [])
    existing = out.read_text() if out.exists() else None
    text = merge(existing, entries, order)
    written = []
    for path, data in pngs.items():
        if not path.exists() or path.read_bytes() != data:
            write_atomic(path, data)
            written.append(path)
    if text != existing:
        write_atomic(out, text)
    return RenderReport(out, order, text, written)


def plot_png(store, view) -> bytes:
    """Reward and frac_reward_zero_std per step, and accuracy per operation before/after on every evaluated
    suite (the run's own held-out split when it has none), as PNG bytes."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = store.steps(view.run.id)
    ctx_results = store.results(view.run.id)
    sets = metric_names.suites_of(view.metrics) or ["held_out"]
    fig, axes = plt.subplots(1, 1 + len(sets), figsize=(5 * (1 + len(sets)), 3.6), dpi=80)
    ax1, bar_axes = axes[0], axes[1:]
    if steps:
        xs = [s for s, _ in steps]
        ax1.plot(xs, [m.get("reward", float("nan")) for _, m in steps], label="reward", color="tab:blue")
        ax1.set_ylabel("train reward")
        ax1.set_xlabel("step")
        twin = ax1.twinx()
        twin.plot(xs, [m.get("frac_reward_zero_std", float("nan")) for _, m in steps], color="tab:orange",
                  label="frac_reward_zero_std")  # fmt: skip
        twin.set_ylim(0, 1)
        twin.set_ylabel("frac_reward_zero_std")
        ax1.set_title("training curve")
    else:
        ax1.text(0.5, 0.5, "no training steps", ha="center", va="center")
        ax1.set_axis_off()
    for ax2, split in zip(bar_axes, sets, strict=True):
        rows = [r for r in ctx_results if r.split == split and r.dimension in ("overall", "operation")]
        labels = sorted({"overall" if r.dimension == "overall" else r.grp for r in rows},
                        key=lambda g: (g != "overall", g))  # fmt: skip
        for offset, stage, color in ((-0.2, "before", "tab:gray"), (0.2, "after", "tab:green")):
            acc = {("overall" if r.dimension == "overall" else r.grp): r.correct / r.total
                   for r in rows if r.stage == stage and r.total}  # fmt: skip
            ax2.bar([i + offset for i in range(len(labels))], [acc.get(g, 0) for g in labels], width=0.4,
                    label=stage, color=color)  # fmt: skip
        ax2.set_xticks(range(len(labels)), labels)
        ax2.set_ylim(0, 1)
        ax2.set_title(f"{split} accuracy")
        ax2.legend(loc="upper right", fontsize=8)
    fig.suptitle(f"{view.run.exp_name} ({view.run.id})", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
