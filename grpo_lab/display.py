"""Terminal views with rich: a run's live progress and its before -> after summary."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .config import RunConfig
from .evaluation import EvalResult
from .runner import RunListener

console = Console(stderr=False, highlight=False)


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def config_table(config: RunConfig, title: str = "Configuration") -> Table:
    table = Table(title=title, show_header=False, box=None, pad_edge=False)
    for key, value in config.to_dict().items():
        table.add_row(f"[bold]{key}[/]", ", ".join(value) if isinstance(value, list) else str(value))
    return table


def plan_table(config: RunConfig) -> Table:
    table = Table(title="Plan", show_header=False, box=None, pad_edge=False)
    for key, value in config.plan():
        table.add_row(f"[bold]{key}[/]", value)
    return table


def print_warnings(config: RunConfig) -> None:
    for message in config.warnings():
        console.print(f"[yellow]warning:[/] {message}")


def comparison_table(before: dict[str, EvalResult], after: dict[str, EvalResult]) -> Table:
    """Greedy accuracy per split and group, before -> after training."""
    table = Table(title="Greedy accuracy, before -> after training")
    for col in ("split", "group", "before", "after", "change"):
        table.add_column(col, justify="left" if col in ("split", "group") else "right")
    for split, b in before.items():
        a = after.get(split)
        rows = [("overall", b.overall, a.overall if a else None)]
        for dim, groups in b.groups().items():
            if len(groups) < 2 and dim != "operation":
                continue
            a_groups = a.groups().get(dim, {}) if a else {}
            rows += [(f"{dim}={g}", c, a_groups.get(g)) for g, c in groups.items()]
        for label, cb, ca in rows:
            change = "" if ca is None else f"{100 * (ca.accuracy - cb.accuracy):+.1f}"
            after_txt = "-" if ca is None else f"{pct(ca.accuracy)} ({ca.correct}/{ca.total})"
            table.add_row(split, label, f"{pct(cb.accuracy)} ({cb.correct}/{cb.total})", after_txt, change)
        table.add_section()
    return table


class LiveView(RunListener):
    """Stage lines, a progress bar over training steps, and eval progress."""

    def __init__(self, out: Console = console):
        self.out = out
        self.progress: Progress | None = None
        self.task = None
        self.eval_progress: Progress | None = None

    def on_stage(self, description: str) -> None:
        self._close_eval()
        if description != "training":
            self.out.print(f"[dim]·[/] {description}")

    def on_model(self, model) -> None:
        where = "built-in" if model.builtin else model.path
        checksum = f", sha256 {model.checksum[:12]}" if model.checksum else ""
        self.out.print(f"[dim]·[/] model {model.name} ({where}{checksum})")

    def on_eval_progress(self, done: int, total: int) -> None:
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
        self.out.print(f"  {stage} / {result.split}: {pct(c.accuracy)} ({c.correct}/{c.total})")

    def on_train_begin(self, total_steps: int) -> None:
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
        if self.progress is None:
            return
        desc = "reward {:+.3f}  zero-std {:.2f}  kl {:.4f}".format(
            metrics.get("reward", float("nan")),
            metrics.get("frac_reward_zero_std", float("nan")),
            metrics.get("kl", float("nan")),
        )
        self.progress.update(self.task, completed=step, description=desc)

    def close(self) -> None:
        self._close_eval()
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
