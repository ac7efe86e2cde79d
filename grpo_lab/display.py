"""Terminal views with rich: a run's live progress and its before -> after summary."""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from . import metrics as metric_names
from .config import RunConfig
from .evaluation import EvalResult
from .events import RunListener
from .metrics import pct
from .suites import tier_rank
from .text import count, printable
from .tracking import sync_command

console = Console(stderr=False, highlight=False)


def esc(value: object) -> str:
    """User text (names, hypotheses, prompts, paths) shown verbatim, never read as rich markup, and with no
    control character but line breaks and tabs reaching the terminal as itself (text.printable)."""
    return escape(printable(value, keep="\n\t"))


def config_table(config: RunConfig, title: str = "Configuration") -> Table:
    return config_table_from_dict(config.to_dict(), title)


def plan_table(config: RunConfig) -> Table:
    table = Table(title="Plan", show_header=False, box=None, pad_edge=False)
    for key, value in config.plan():
        table.add_row(f"[bold]{key}[/]", value)
    return table


def print_warnings(config: RunConfig, *extra: str | None) -> None:
    for message in [*config.warnings(), *(m for m in extra if m)]:
        console.print(f"[yellow]warning:[/] {esc(message)}")


def group_order(label: str) -> tuple:
    """Sort key for "dimension=group" labels: overall first, difficulty tiers easy to hard."""
    if label == "overall":
        return (0, 0, "")
    dim, _, group = label.partition("=")
    return (1, dim, *tier_rank(group))


def generalization_gap(values: dict) -> str | None:
    """The train/held-out gap after training, the seed's overfitting story in one line (from a run's metrics)."""
    train = values.get("train_acc")
    sets = ["held_out", *metric_names.suites_of(values)]
    held = {name: values[name] for name in sets if values.get(name) is not None}
    if train is None or not held:
        return None
    parts = [f"{split} {pct(acc)} ({100 * (train - acc):+.1f} points)" for split, acc in held.items()]
    return f"train {pct(train)} after training; gap to " + ", ".join(parts)


OLD_RUN_NOTE = (
    "recorded before suites were held out of training sets: its suite figures may include problems it (or the "
    "tiny model it started from) trained on"
)


def verdict_text(run) -> str | None:
    if not run.verdict:
        return None
    from .answer import run_claim

    colour = {"confirmed": "green", "rejected": "red"}.get(run.verdict, "yellow")
    words = run_claim(run.criteria)  # what was tested, in words, beside the verdict
    return ((f"{esc(words)}: " if words else "") + f"[{colour}]{run.verdict}[/]"
            + (f" ({esc(run.verdict_detail)})" if run.verdict_detail else ""))  # fmt: skip


class LiveView(RunListener):
    """Stage lines, then training progress: a live bar on a terminal; piped to a file (tee, nohup, Slurm), a plain
    line every few steps and at least every minute, as transformers prints its logs."""

    LINES = 20  # about this many progress lines per training, plus the last step
    QUIET_SECONDS = 60.0  # and one at least this often

    def __init__(self, out: Console = console, stages: bool = True):
        self.out = out
        self.stages = stages  # an evaluation-only run has one result per suite: no before or after to name
        self.progress: Progress | None = None
        self.task = None
        self.eval_progress: Progress | None = None
        self.total = 0
        self.started = self.last_line = 0.0
        self.every = 1
        self.latest: dict[str, float] = {}

    def on_stage(self, description: str) -> None:
        self._close_eval()
        if description != "training":
            self.out.print(f"[dim]·[/] {esc(description)}")

    def on_model(self, model) -> None:
        where = "built-in" if model.builtin else model.path
        checksum = f", sha256 {model.checksum[:12]}" if model.checksum else ""
        self.out.print(f"[dim]·[/] model {esc(model.name)} ({esc(where)}{checksum})")

    def on_eval_progress(self, done: int, total: int) -> None:
        if not self.out.is_terminal:
            return  # a file gets the result line only
        if self.eval_progress is None:
            self.eval_progress = Progress(
                TextColumn("  generating"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.out,
                transient=True,
            )
            self.eval_progress.start()
            self.eval_task = self.eval_progress.add_task("eval", total=total)
        self.eval_progress.update(self.eval_task, completed=done, total=total)

    def _close_eval(self) -> None:
        if self.eval_progress is not None:
            self.eval_progress.stop()
            self.eval_progress = None

    def on_eval(self, stage: str, result: EvalResult) -> None:
        self._close_eval()
        c = result.overall
        label = f"{stage} / {result.split}" if self.stages else result.split
        self.out.print(f"  {esc(label)}: {pct(c.accuracy)} ({c.correct}/{c.total})")

    def on_train_begin(self, total_steps: int) -> None:
        self.total, self.started = total_steps, time.monotonic()
        self.last_line = self.started
        self.every = max(1, -(-total_steps // self.LINES))
        if not self.out.is_terminal:
            self.out.print(f"training: {total_steps} steps, a line every {self.every}")
            return
        self.progress = Progress(
            TextColumn("[bold]training[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.out,
        )
        self.progress.start()
        self.task = self.progress.add_task("", total=total_steps)

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        # a step that generated nothing (--num_iterations above 1 reuses a batch) logs no reward: the last one stands
        for key in ("reward", "frac_reward_zero_std", "kl"):
            value = metrics.get(key)
            if value is not None and value == value:
                self.latest[key] = value
        shown = (("reward", "reward", "+.3f"), ("zero-std", "frac_reward_zero_std", ".2f"), ("kl", "kl", ".4f"))
        desc = "  ".join(
            f"{label} {'-' if self.latest.get(key) is None else format(self.latest[key], spec)}"
            for label, key, spec in shown
        )
        if self.progress is not None:
            self.progress.update(self.task, completed=step, description=desc)
            return
        now = time.monotonic()
        if self.total and (step % self.every == 0 or step >= self.total or now - self.last_line >= self.QUIET_SECONDS):
            self.last_line = now
            self.out.print(progress_line(step, self.total, desc, now - self.started), soft_wrap=True)

    def close(self) -> None:
        self._close_eval()
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def progress_line(step: int, total: int, desc: str, elapsed: float) -> str:
    """``step 10/186  reward +0.125  zero-std 0.38  kl 0.0150  elapsed 0:00:51  eta 0:15:01``"""
    eta = elapsed / step * (total - step) if step else None
    return f"step {step}/{total}  {desc}  elapsed {_clock(elapsed)}  eta {'-' if eta is None else _clock(eta)}"


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


STATUS_STYLE = {"finished": "green", "running": "cyan", "failed": "red", "interrupted": "yellow", "crashed": "red"}


def status_text(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


def short_time(iso_time: str | None) -> str:
    return (iso_time or "")[:16].replace("T", " ")


def change(values: dict, key: str, short: bool = False) -> str:
    """ "before -> after" of an accuracy metric (held_out, train_acc, arith-v1); ``short``: 40.6→61.0%."""
    before, after = values.get(f"{key}_before"), values.get(key)
    if before is None and after is None:
        return "-"
    if short:
        return f"{'-' if before is None else f'{100 * before:.1f}'}→{pct(after)}"
    return f"{pct(before)} -> {pct(after)}"


def results_table(results, title: str = "Greedy accuracy, before -> after training") -> Table:
    """Stored results (rows of stage/split/dimension/grp/correct/total) as before -> after per split and group.

    An evaluation-only entry (no "before" stage) gets a single accuracy column.
    """
    cells: dict[tuple[str, str], dict[str, tuple[int, int]]] = {}
    groups_per_dim: dict[tuple[str, str], set[str]] = {}
    for r in results:
        groups_per_dim.setdefault((r.split, r.dimension), set()).add(r.grp)
    for r in results:
        if r.dimension not in ("overall", "operation") and len(groups_per_dim[(r.split, r.dimension)]) < 2:
            continue  # a dimension with one group repeats the overall row
        label = "overall" if r.dimension == "overall" else f"{r.dimension}={r.grp}"
        cells.setdefault((r.split, label), {})[r.stage] = (r.correct, r.total)
    only_after = not any("before" in stages for stages in cells.values())
    table = Table(title=title)
    columns = ("split", "group", "accuracy") if only_after else ("split", "group", "before", "after", "change")
    for col in columns:
        table.add_column(col, justify="left" if col in ("split", "group") else "right")
    split_rank = {"train": 0, "held_out": 1}
    order = sorted(cells, key=lambda k: (split_rank.get(k[0], 2), k[0], group_order(k[1])))
    for split, label in order:
        stages = cells[(split, label)]
        shown = {st: f"{pct(c / t if t else 0)} ({c}/{t})" for st, (c, t) in stages.items()}
        if only_after:
            table.add_row(split, label, shown["after"])
            continue
        delta = ""
        if "before" in stages and "after" in stages:
            (cb, tb), (ca, ta) = stages["before"], stages["after"]
            delta = f"{100 * (ca / ta - cb / tb):+.1f}" if ta and tb else ""
        table.add_row(split, label, shown.get("before", "-"), shown.get("after", "-"), delta)
    return table


def reproduction_table(lines, original: str, rerun: str) -> Table:
    """A rerun against its run, metric by metric: both values (accuracies as percentages to 0.01), the difference,
    and whether it reproduced."""
    from .reproduce import DIFFERS, IDENTICAL, MISSING

    table = Table(title=f"Reproduction: run {rerun} against run {original}")
    for col, justify in (("metric", "left"), (original, "right"), (rerun, "right"), ("difference", "right"),
                         ("reproduced", "left")):  # fmt: skip
        table.add_column(col, justify=justify)
    colour = {IDENTICAL: "green", DIFFERS: "red", MISSING: "yellow"}

    def shown(value: float | None, accuracy: bool, sign: str = "") -> str:
        if value is None:
            return "-"
        return f"{100 * value:{sign}.2f}%" if accuracy else f"{value:{sign}.6g}"

    for line in lines:
        parsed = metric_names.parse(line.metric)
        accuracy = parsed is not None and parsed.suffix != "overlap"
        difference = line.difference
        table.add_row(esc(line.metric), shown(line.original, accuracy), shown(line.rerun, accuracy),
                      "0" if difference == 0 else shown(difference, accuracy, "+"),
                      f"[{colour.get(line.verdict, 'cyan')}]{line.verdict}[/]")  # fmt: skip
    return table


def curve_table(steps, keys=("reward", "reward_std", "frac_reward_zero_std", "kl", "loss", "grad_norm")) -> Table:
    """The training curve at a handful of evenly spaced steps."""
    table = Table(title=f"Training curve ({len(steps)} steps)")
    table.add_column("step", justify="right")
    for key in keys:
        table.add_column(key, justify="right")
    if not steps:
        return table
    picks = sorted({round(i * (len(steps) - 1) / 9) for i in range(10)}) if len(steps) > 10 else range(len(steps))
    for i in picks:
        step, metrics = steps[i]
        table.add_row(str(step), *("-" if metrics.get(k) is None else f"{metrics[k]:.4g}" for k in keys))
    return table


def show_run(store, view, out: Console = console) -> None:
    r = view.run
    out.print(f"[bold]{esc(r.exp_name)}[/]  run [bold]{r.id}[/]  {status_text(r.status)}")
    facts = Table(show_header=False, box=None, pad_edge=False)
    rows = [
        ("hypothesis", r.hypothesis), ("expected", r.expected), ("criteria", r.criteria), ("preset", r.preset),
        ("tags", ", ".join(view.tags)), ("rerun of", r.rerun_of), ("started", r.started_at),
        ("finished", r.finished_at),
        ("duration", None if r.duration_s is None else f"{r.duration_s:.1f} s"),
        ("training time", None if r.train_seconds is None else f"{r.train_seconds:.1f} s"),
        ("error", r.error),
        ("model", f"{r.model_name}" + (f" (sha256 {r.model_checksum})" if r.model_checksum else "")),
        ("output dir", r.output_dir), ("host / pid", f"{r.host} / {r.pid}"),
        ("code", None if r.git_commit is None else code_text(r)),
        ("versions", ", ".join(f"{k} {v}" for k, v in view.versions.items())),
        ("wandb", f"{r.wandb_mode} {r.wandb_project or ''} {r.wandb_url or ''}".strip()),
        ("suites", suites_line(getattr(r, "suites", None))),
    ]  # fmt: skip
    for key, value in rows:
        if value:
            facts.add_row(f"[bold]{key}[/]", esc(value))
    if r.verdict:
        facts.add_row("[bold]verdict[/]", verdict_text(r))
    out.print(facts)
    commands = (("command", r.command), ("resolved command", runnable_command(r)),
                ("wandb sync", sync_command(r.wandb_mode, r.id, r.wandb_dir)))  # fmt: skip
    for key, value in commands:
        if value:  # one line each, however wide: pasted into a shell, it runs as written
            out.print(f"[bold]{key}[/] {esc(value)}", soft_wrap=True)
    out.print(results_table(store.results(r.id)))
    if not r.suites_disjoint and metric_names.suites_of(view.metrics):
        counts = [f"{s}: {int(view.metrics[metric_names.overlap(s)])} of its training problems"
                  for s in metric_names.suites_of(view.metrics) if metric_names.overlap(s) in view.metrics]  # fmt: skip
        out.print(f"[yellow]†[/] {OLD_RUN_NOTE}" + (f" ({'; '.join(counts)})" if counts else "") + ".")
    out.print(curve_table(store.steps(r.id)))
    samples = store.samples(r.id)
    if samples:
        table = Table(title="Sample completions (last logged step)")
        for col in ("step", "prompt", "completion", "reward"):
            table.add_column(col)
        last = max(s.step for s in samples)
        for s in (s for s in samples if s.step == last):
            table.add_row(str(s.step), esc(s.prompt), esc(repr(s.completion)), f"{s.reward:+.2f}")
        out.print(table)
    for n in store.notes(r.id):
        out.print(f"[bold]{n.kind}[/] ({short_time(n.created_at)}): {esc(n.text)}")
    from .diagnostics import diagnose

    for finding in diagnose(view.config, view.metrics):
        colour = "yellow" if finding.severity == "warning" else "cyan"
        out.print(f"[{colour}]{finding.severity}[/] {finding.code}: {esc(finding.message)}")
    out.print(config_table_from_dict(view.config))


def runnable_command(run) -> str:
    """The resolved command as it runs: a training run recorded before the resolved command carried what the run
    tests gets its --hypothesis, --expected and --criteria from the record (`run` requires the first)."""
    import shlex

    command = run.resolved_command
    if run.kind != "train" or not command or not run.hypothesis or " --hypothesis " in f" {command} ":
        return command
    given = (("--hypothesis", run.hypothesis), ("--expected", run.expected), ("--criteria", run.criteria))
    return command + " " + shlex.join([x for flag, value in given if value for x in (flag, value)])


def code_text(run) -> str:
    """The code a run ran: its commit, and a dirty tree's uncommitted changes (whether their diff was kept)."""
    from .reproduce import code_of, describe

    text = describe(code_of(run))
    return text + (f": grpo-lab show {run.id} --diff" if run.git_dirty and run.code_diff is not None else "")


def suites_line(recorded: str | None) -> str | None:
    """The suites a run recorded, in words: ``orig-eval (datasets folder /data/orig-eval): 200 rows, 185
    distinct, sha256 0589e37a1173``; None when it recorded none (runs before m009)."""
    import json

    try:
        suites = json.loads(recorded) if recorded else []
        parts = []
        for s in suites:
            rows, distinct = s.get("rows"), s.get("distinct")
            counts = f"{rows} rows" + (f", {distinct} distinct" if distinct != rows else "")
            where = "built in" if s.get("kind") == "built-in" else f"{s.get('kind')} {s.get('source')}"
            if s.get("imported_from"):
                where = f"imported from {s['imported_from'].get('source')}"
            parts.append(f"{s.get('name')} ({where}): {counts}, sha256 {str(s.get('sha256'))[:12]}")
    except (ValueError, TypeError, AttributeError):
        return "(not readable)"
    return "; ".join(parts) or None


def config_table_from_dict(config: dict, title: str = "Configuration") -> Table:
    table = Table(title=title, show_header=False, box=None, pad_edge=False)
    for key, value in config.items():
        table.add_row(f"[bold]{key}[/]", esc(", ".join(value) if isinstance(value, list) else value))
    return table


def diff_tables(a, b) -> list[Table]:
    """Configuration and results of two runs side by side; differing rows in bold yellow."""
    from .diagnostics import diagnose

    def side_by_side(title: str, left: dict, right: dict, keys: list[str], fmt) -> Table:
        table = Table(title=title)
        for col in ("", a.run.id, b.run.id):
            table.add_column(col)
        for key in keys:
            lv, rv = left.get(key), right.get(key)
            style = "bold yellow" if lv != rv else None
            table.add_row(esc(key), fmt(key, lv), fmt(key, rv), style=style)
        return table

    def plain(_, v):
        return "-" if v is None else esc(", ".join(map(str, v)) if isinstance(v, list) else v)

    def result(key, v):
        if isinstance(v, float):
            parsed = metric_names.parse(key)
            return pct(v) if parsed and parsed.suffix != "overlap" else f"{v:.4g}"
        return plain(key, v)

    config_keys = list(dict.fromkeys([*a.config, *b.config]))
    metric_keys = list(dict.fromkeys([*a.metrics, *b.metrics]))
    run_keys = {
        "status": (a.run.status, b.run.status),
        "model": (a.run.model_name, b.run.model_name),
        "started": (a.run.started_at, b.run.started_at),
        "hypothesis": (a.run.hypothesis, b.run.hypothesis),
        "criteria": (a.run.criteria, b.run.criteria),
        "verdict": (a.run.verdict, b.run.verdict),
        "suites held out": (a.run.suites_disjoint, b.run.suites_disjoint),
    }
    runs = Table(title="Runs")
    for col in ("", a.run.id, b.run.id):
        runs.add_column(col)
    for key, (lv, rv) in run_keys.items():
        runs.add_row(key, plain(key, lv), plain(key, rv))
    runs.add_row("diagnostics", *(" ".join(f.code for f in diagnose(v.config, v.metrics)) or "-" for v in (a, b)))
    return [
        runs,
        side_by_side("Configuration", a.config, b.config, config_keys, plain),
        side_by_side("Results", a.metrics, b.metrics, metric_keys, result),
    ]


def sweep_status_table(rows: list[dict], sweep, width: int | None = None):
    """Where a sweep stands: per arm, how many seeds are queued, running, finished, failed, interrupted, crashed
    (a status no arm has is left out), and the verdicts of its finished runs; fitted to ``width``."""
    from .layout import Column, terminal_table
    from .store.query import STATUSES

    total = {c: sum(r[c] for r in rows) for c in ("seeds", *STATUSES)}
    arms = [r["arm"] + (" (baseline)" if r["arm"] == sweep.baseline != "baseline" else "") for r in rows]
    columns = [Column("arm", "arm", arms, priority=0, flex=True, min_width=8),
               Column("seeds", "seeds", [str(r["seeds"]) for r in rows], priority=1, right=True)]  # fmt: skip
    columns += [Column(s, s, [str(r[s]) for r in rows], priority=2, right=True) for s in STATUSES if total[s]]
    columns.append(Column("verdicts", "verdicts", [r["verdicts"] for r in rows], priority=3, flex=True))
    title = f"Sweep {sweep.id} {sweep.name}"  # short: title and notes wrap at the table's width
    summary = ", ".join(f"{total[s]} {s}" for s in STATUSES if total[s]) + f" of {count(total['seeds'], 'run')}"
    return terminal_table(columns, width or console.width, title=title, notes=[summary])
