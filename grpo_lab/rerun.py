"""`grpo-lab rerun ID`: a recorded run again, from its record alone, as a new run linked to it (``rerun_of``), and
whether it reproduced (reproduce.py): metric by metric, with the code and the model each ran.

The record gives everything: the resolved configuration (seed, threads and processes included: a CPU's sums
depend on how they are split), the hypothesis, expected outcome and criteria, and the model, whose weights must
be the ones the run started from (their SHA-256, where it was recorded). The code is the code installed here;
the report says whether it is the code the run ran (its commit, and a dirty tree's diff, which grpo-lab keeps
so that the code can be put back: ``grpo-lab show ID --diff``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

from . import reproduce
from .config import EvalConfig, RunConfig, check_output_dir
from .errors import GrpoLabError
from .events import RunListener
from .reproduce import code_of
from .store.db import RunView

ENDED = ("finished", "failed", "interrupted", "crashed")


@dataclass
class Plan:
    """What a rerun runs: the recorded run, its configuration as this grpo-lab reads it, and its model's check."""

    view: RunView
    config: RunConfig | EvalConfig
    model: str  # what the report says of the model


def plan(store, run_ref: str, output_dir: str | None = None) -> Plan:
    """The rerun of ``run_ref``, or a one-line refusal before anything is written: a run still queued or running, a
    configuration this grpo-lab cannot run, a model whose weights are not the ones the run started from."""
    from .runner import resolve_model

    view = store.find_run(run_ref)
    run = view.run
    if run.status not in ENDED:
        raise GrpoLabError(f"run {run.id} is {run.status}; rerun a run that ended ({', '.join(ENDED)})")
    if run.kind == "eval":
        if output_dir is not None:
            raise GrpoLabError(f"run {run.id} is an evaluation: it saves no model, so --output_dir has no use")
        known = {f.name for f in fields(EvalConfig)}
        config: RunConfig | EvalConfig = EvalConfig(**{k: v for k, v in view.config.items() if k in known})
    else:
        config = RunConfig.from_dict(view.config)
        if output_dir is not None:
            check_output_dir(output_dir)
        config.output_dir = output_dir  # a new run: its own folder (runs/<its id> unless given)
    resolved = resolve_model(config.model_name, store)
    now = resolved.checksum or _checksum(resolved.path)
    then = run.model_checksum
    if then and now and then != now:
        raise GrpoLabError(
            f"the model {config.model_name} is not the one run {run.id} started from: its weights' sha256 is "
            f"{now[:12]}..., the run recorded {then[:12]}...; rerun where those weights are"
        )
    if then and now:
        model = f"the same weights (sha256 {now[:12]})"
    else:
        model = "not checked: the run recorded no checksum of its weights" if not then else "not checked"
    return Plan(view, config, f"{config.model_name}: {model}")


def _checksum(path: str) -> str | None:
    from .models import weights_checksum

    weights = Path(path) / "model.safetensors"
    return weights_checksum(Path(path)) if weights.is_file() else None


@dataclass
class Outcome:
    run_id: str
    status: str
    error: str | None
    exit_code: int
    recorded: object  # runner.RecordedRun (train) or runner.RecordedEval (eval)
    lines: list[reproduce.Line]
    code: str  # the report's line about the code
    model: str  # and about the model


def rerun(
    plan_: Plan,
    store,
    argv: list[str],
    wandb_mode: str = "disabled",
    wandb_project: str | None = None,
    wandb_entity: str | None = None,
    listeners: list[RunListener] | None = None,
    on_started: Callable | None = None,
) -> Outcome | None:
    """Run ``plan_`` as a new run (``argv``: the command as typed) and compare it with the run it reran; notes on
    both say how it went. Under a launcher every process calls this; the main one returns the outcome, the others
    None."""
    from . import launch
    from .runner import Intent, record_eval, record_run

    run = plan_.view.run
    if isinstance(plan_.config, EvalConfig):
        recorded = record_eval(plan_.config, store, argv, run.hypothesis, listeners, rerun_of=run.id)
    else:
        intent = Intent(run.hypothesis or f"rerun of {run.id}", run.expected, run.criteria, run.preset, argv)
        recorded = record_run(plan_.config, intent, store, wandb_mode, wandb_project, wandb_entity, listeners,
                              on_started, rerun_of=run.id)  # fmt: skip
    if not launch.is_main():
        return None
    new = store.find_run(recorded.run_id)
    lines = reproduce.compare_metrics(plan_.view.metrics, new.metrics)
    code = reproduce.code_line(code_of(run), code_of(new.run))
    said = reproduce.summary(lines) if recorded.status == "finished" else f"the rerun {recorded.status}"
    store.add_note(new.run.id, f"rerun of {run.id}: {said}; code: {code}; model: {plan_.model}", "comment")
    store.add_note(run.id, f"rerun as {new.run.id}: {said}", "comment")
    return Outcome(recorded.run_id, recorded.status, recorded.error, recorded.exit_code, recorded, lines, code,
                   plan_.model)  # fmt: skip
