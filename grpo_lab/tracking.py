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
    dir: str | None = None
    handle: Any = None  # the wandb Run, when enabled

    @property
    def sync_command(self) -> str | None:
        if self.mode == "offline" and self.dir:
            return f"wandb sync {self.dir}"
        return None


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
        run = wandb.init(project=project, entity=entity, name=name, tags=tags, config=config, mode=mode, **resume)
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise GrpoLabError(
            f"WandB could not start in {mode} mode ({type(exc).__name__}: {first_line}); "
            "try --wandb offline or --wandb disabled"
        ) from None
    finally:
        sys.argv = argv
    return WandbRun(run.id, mode, project, run.entity or entity, run.url, str(Path(run.dir).parent), run)


def finish(run: WandbRun, summary: dict[str, Any], exit_code: int) -> None:
    if run.handle is None:
        return
    for key, value in summary.items():
        if value is not None:
            run.handle.summary[key] = value
    run.handle.finish(exit_code=exit_code)
