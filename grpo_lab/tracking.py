"""WandB: choose the mode, start the run (its ID is the grpo-lab run ID), close it with the final numbers."""

from __future__ import annotations

import netrc
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import provenance
from .errors import ConfigError, GrpoLabError
from .events import RunListener
from .ids import new_run_id

MODES = ("online", "offline", "disabled")
DEFAULT_PROJECT = "grpo-lab"


@dataclass
class WandbRun:
    id: str
    mode: str
    project: str | None = None
    entity: str | None = None
    url: str | None = None
    dir: str | None = None  # every local folder of the run, one per line: a resumed run writes one per stretch
    handle: Any = None  # the wandb Run, when enabled

    @property
    def dirs(self) -> list[str]:
        return folders(self.dir)

    @property
    def sync_command(self) -> str | None:
        return sync_command(self.mode, self.id, self.dir)


def folders(recorded: str | None) -> list[str]:
    """The local WandB folders a run's record names (its ``wandb_dir``: one per line, oldest first)."""
    return [line for line in (recorded or "").splitlines() if line.strip()]


def sync_command(mode: str | None, run_id: str, recorded: str | None) -> str | None:
    """``wandb sync`` for every folder of an offline run, into the one WandB run: ``--id`` makes WandB sync the
    folders of a resumed run in order of their start, as stretches of one run."""
    import shlex

    dirs = folders(recorded)
    if mode != "offline" or not dirs:
        return None
    return shlex.join(["wandb", "sync", *(["--id", run_id] if len(dirs) > 1 else []), *dirs])


def joined(previous: str | None, new: str | None) -> str | None:
    """A resumed run's folders: those it had, and the one this stretch writes."""
    dirs = [d for d in folders(previous) if d != new] + ([new] if new else [])
    return "\n".join(dirs) or None


def has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def choose_mode(requested: str | None) -> str:
    """--wandb if given, else WANDB_MODE, else online with credentials and offline without."""
    mode = requested if requested is not None else os.environ.get("WANDB_MODE") or None
    mode = mode if mode is not None else ("online" if has_credentials() else "offline")
    if mode == "dryrun":
        mode = "offline"
    if mode not in MODES:
        raise ConfigError(f"--wandb {mode!r} is not one of: {', '.join(MODES)}")
    return mode


def start(
    mode: str,
    name: str,
    tags: list[str],
    config: dict[str, Any],
    project: str | None = None,
    entity: str | None = None,
    resume_id: str | None = None,
) -> WandbRun:
    """Start a WandB run; ``resume_id`` continues that run (WandB's resume="allow": the same ID, the history
    continuing), as ``grpo-lab resume`` does."""
    if mode == "disabled":
        return WandbRun(resume_id or new_run_id(), mode)
    import wandb

    project = project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT
    resume = {"id": resume_id, "resume": "allow"} if resume_id else {}
    argv = sys.argv
    try:  # WandB keeps the command line in the run's metadata: give it the redacted one (no URL passwords)
        sys.argv = provenance.redact_args(argv)
        # piped to a log, WandB says nothing of its own (its closing sparklines and summary repeat what grpo-lab
        # prints in words); grpo-lab names the run's URL and the command that uploads an offline run
        settings = wandb.Settings(quiet=True, silent=True) if not sys.stdout.isatty() else None
        run = wandb.init(project=project, entity=entity, name=name, tags=tags, config=config, mode=mode,
                         settings=settings, **resume)  # fmt: skip
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise GrpoLabError(
            f"WandB could not start in {mode} mode ({type(exc).__name__}: {first_line}); "
            "try --wandb offline or --wandb disabled"
        ) from None
    finally:
        sys.argv = argv
    url = run.url if mode == "online" else None  # an offline run has none (and WandB warns when asked)
    return WandbRun(run.id, mode, project, run.entity or entity, url, str(Path(run.dir).parent), run)


class WandbListener(RunListener):
    """Logs a run to WandB at WandB step = training step: each step's metrics (TRL's names, under ``train/``, as
    transformers logs them) with that step's sample completions as a table.

    TRL reports nothing to WandB itself: its own logging counts WandB steps by calls (a profiling timer alone logs
    8 times a step), so a resumed run's second stretch started again at step 0 and overlapped the first. With the
    training step as WandB's step, every stretch of a run, each in its own offline folder, shares one axis."""

    def __init__(self, run: WandbRun):
        self.handle = run.handle
        self.samples: dict[int, list] = {}

    def on_samples(self, step, samples) -> None:
        self.samples.setdefault(step, []).extend(samples)

    def on_step(self, step, metrics) -> None:
        import wandb

        row: dict[str, Any] = {f"train/{k}": v for k, v in metrics.items()}
        row["train/global_step"] = step
        due = sorted(s for s in self.samples if s <= step)  # generated for this step (or one the log skipped)
        taken = [x for s in due for x in self.samples.pop(s)]
        if taken:
            row["completions"] = wandb.Table(
                columns=["step", "prompt", "completion", "reward", "advantage"],
                data=[[x.step, x.prompt, x.completion, x.reward, x.advantage] for x in taken],
            )
        self.handle.log(row, step=step)


def listeners(run: WandbRun) -> list[RunListener]:
    """What records a run to WandB, as run listeners (none when WandB is disabled)."""
    return [WandbListener(run)] if run.handle is not None else []


def finish(run: WandbRun, summary: dict[str, Any], exit_code: int) -> None:
    if run.handle is None:
        return
    for key, value in summary.items():
        if value is not None:
            run.handle.summary[key] = value
    run.handle.finish(exit_code=exit_code)
