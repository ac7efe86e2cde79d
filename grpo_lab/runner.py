"""One run's lifecycle: data -> model -> evaluate before -> train -> evaluate after.

Everything that happens is sent to ``RunListener``s (the CLI's live view, the store's
recorder, ...); the runner itself prints nothing.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import criteria, launch, metrics, provenance, tasks, tracking
from .config import EvalConfig, RunConfig
from .errors import ConfigError, GrpoLabError
from .evaluation import EvalResult, evaluate
from .events import Fanout, RunListener
from .ids import new_run_id
from .lifecycle import Lifecycle
from .models import ResolvedModel, load_model, load_tokenizer, resolve, weights_checksum
from .store import spool
from .store.db import Run, iso, now
from .store.location import StoreError
from .suites import check_unchanged, suite_records
from .tracking import WandbRun
from .training import check_device, checkpoints, device, model_incomplete, train

__all__ = ["Intent", "RecordedRun", "RunListener", "execute", "record_eval", "record_run", "resume_run"]


@dataclass
class RunOutcome:
    output_dir: str  # where the trained model was saved
    train_seconds: float | None = None  # the training phase's wall time


def datasets_for(config: RunConfig) -> tuple[list[tasks.Problem], list[tasks.Problem]]:
    """The run's training problems and held-out problems of the same kind (none of them in training)."""
    return config.problem_sets()


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def quiet_libraries() -> None:
    """Silence the per-load progress bars and deprecation chatter of transformers and datasets."""
    import warnings

    import datasets
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="trl")


def execute(
    config: RunConfig,
    output_dir: str | Path,
    listeners: list[RunListener] | None = None,
    resolved: ResolvedModel | None = None,
    resume_from: str | None = None,
) -> RunOutcome:
    """Run one GRPO experiment end to end. Exceptions propagate; listeners have seen everything before them.

    ``resume_from`` (a checkpoint of this run) continues training from there, without the evaluation before
    training, which the run recorded when it started. Under a launcher every process runs this: each trains on
    its share of every batch (DDP) and evaluates its share of every split, and the results are gathered, so what
    the main process reports covers every problem once; only the processes given listeners (the main one) report.
    """
    events = Fanout(listeners)
    set_threads(config.threads)
    resolved = resolved or resolve(config.model_name)
    events.on_model(resolved)
    train_problems, held_out = datasets_for(config)
    events.on_stage("loading model")
    tokenizer = load_tokenizer(resolved.path)
    model = load_model(resolved.path).to(device())  # evaluated before training where it trains
    outcome = RunOutcome(str(output_dir))
    suites = {suite.name: list(suite.problems) for suite in config.loaded_suites()}
    splits = {"train": train_problems, "held_out": held_out, **suites}
    events.on_splits(splits)
    task = config.task_object() if config.task is not None else None  # None: the built-in rules, as always

    def run_evals(stage: str) -> None:
        for split, problems in splits.items():
            if not problems:
                continue
            events.on_stage(f"evaluating {stage} training: {split} ({len(problems)} problems)")
            mine = list(range(launch.process_index(), len(problems), launch.world_size()))
            result = evaluate(
                model,
                tokenizer,
                [problems[i] for i in mine],
                split,
                config.max_completion_length,
                config.eval_batch_size,
                on_progress=events.on_eval_progress,
                task=task,
            )
            if launch.world_size() > 1:
                everyone = sorted(launch.gather(list(zip(mine, result.predictions, strict=True))), key=lambda p: p[0])
                result = EvalResult(split, [p for _, p in everyone])
            events.on_eval(stage, result)

    if resume_from is None:
        run_evals("before")
    events.on_stage("training" if resume_from is None else f"resuming training from {Path(resume_from).name}")
    dataset = tasks.to_dataset(train_problems)
    model, outcome.train_seconds = train(config, model, tokenizer, dataset, str(output_dir), events, resume_from)
    run_evals("after")
    return outcome


# --- a recorded run: store, signals, heartbeat, WandB ------------------------------------------------------------


@dataclass
class Intent:
    """What the researcher says about a run, recorded with it."""

    hypothesis: str
    expected: str | None = None
    criteria: str | None = None
    preset: str | None = None
    argv: list[str] = field(default_factory=list)  # the command as typed


class StoreRecorder(RunListener):
    """Streams a run's events into the store in batched commits (every few seconds, and at each evaluation)."""

    def __init__(self, store, run_id: str, flush_seconds: float = 5.0):
        self.store, self.run_id, self.flush_seconds = store, run_id, flush_seconds
        self.steps: list[tuple[int, dict[str, float]]] = []
        self.results: list[tuple[str, str, str, str, int, int]] = []
        self.overlaps: dict[str, int] = {}  # suite -> how many training problems it holds
        self._pending_steps: list[tuple[int, dict[str, float]]] = []
        self._pending_samples: list[tuple] = []
        self._last_flush = time.monotonic()

    def on_step(self, step, metrics):
        self.steps.append((step, metrics))
        self._pending_steps.append((step, metrics))
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def on_splits(self, splits):
        train = splits.get("train", [])
        self.overlaps = {name: tasks.overlap(train, problems) for name, problems in splits.items()
                         if name not in metrics.OWN_SPLITS}  # fmt: skip

    def metrics(self) -> dict[str, float]:
        return metrics.compute(self.steps, self.results, self.overlaps)

    def on_checkpoint(self, step):
        self.flush()  # before the checkpoint exists: a resume from it finds every step up to it recorded

    def on_samples(self, step, samples):
        self._pending_samples += [
            (step, i, s.prompt, s.completion, s.reward, s.advantage, s.answer) for i, s in enumerate(samples)
        ]

    def on_eval(self, stage, result):
        rows = [(stage, result.split, "overall", "", result.overall.correct, result.overall.total)]
        for dim, groups in result.groups().items():
            rows += [(stage, result.split, dim, group, c.correct, c.total) for group, c in groups.items()]
        self.results += rows
        predictions = [(stage, result.split, i, p) for i, p in enumerate(result.predictions)]
        self.store.record(self.run_id, results=rows, predictions=predictions)

    def drop_pending(self):
        self._pending_steps, self._pending_samples = [], []

    def flush(self):
        if self._pending_steps or self._pending_samples:
            self.store.record(self.run_id, steps=self._pending_steps, samples=self._pending_samples)
            self._pending_steps, self._pending_samples = [], []
        self._last_flush = time.monotonic()


@dataclass
class RecordedRun:
    run_id: str
    status: str  # finished | failed | interrupted
    outcome: RunOutcome | None
    wandb: WandbRun
    error: str | None = None
    exit_code: int = 0
    verdict: criteria.Verdict | None = None
    unsent: str | None = None  # why the record is not in the store and how to upload it, when it is in the spool


def _run_row(run_id, kind, argv, args, config, resolved, started_at, **fields) -> Run:
    """A new run row with its provenance: the command as typed and one that reproduces it (secrets
    redacted), the resolved configuration, host, pid, library versions, environment, git state (a dirty tree's
    diff too), model."""
    code = provenance.code_state()
    return Run(
        id=run_id,
        kind=kind,
        status="running",
        command=shlex.join(provenance.redact_args(argv)),
        resolved_command=shlex.join(["grpo-lab", *provenance.redact_args(args)]),
        config=json.dumps(config),
        started_at=iso(started_at),
        heartbeat_at=iso(started_at),
        host=socket.gethostname(),
        pid=os.getpid(),
        versions=json.dumps(provenance.versions()),
        environment=json.dumps(provenance.environment()),
        git_commit=code.commit,
        git_dirty=code.dirty,
        code_diff=code.diff,
        code_diff_bytes=code.diff_bytes,
        model_name=config["model_name"],
        model_path=resolved.path,
        model_checksum=resolved.checksum,
        **fields,
    )


def intent_args(hypothesis: str | None, expected: str | None = None, criteria: str | None = None) -> list[str]:
    """The flags that say what a run tests, as a recorded command repeats them (``run`` requires --hypothesis)."""
    given = (("--hypothesis", hypothesis), ("--expected", expected), ("--criteria", criteria))
    return [x for flag, value in given if value for x in (flag, value)]


@dataclass(frozen=True)
class _Start:
    """What the main process hands the others before any work: where the run goes, or why it cannot start."""

    run_id: str | None = None
    output_dir: str | None = None
    resolved: ResolvedModel | None = None
    error: str | None = None
    config: dict | None = None  # a resumed run's configuration, as recorded
    checkpoint: str | None = None  # where a resumed run continues from


def check_processes(config: RunConfig, started: int) -> None:
    """Fill in ``config.num_processes`` from the launcher, or refuse a count it did not start."""
    if config.num_processes is None:
        config.num_processes = started
    elif config.num_processes != started:
        how = "grpo-lab run --num_processes N hands over to it" if started == 1 else f"it started {started}"
        raise ConfigError(
            f"--num_processes {config.num_processes} needs that many processes from accelerate's launcher ({how})"
        )


def record_run(
    config: RunConfig,
    intent: Intent,
    store,
    wandb_mode: str = "disabled",
    wandb_project: str | None = None,
    wandb_entity: str | None = None,
    listeners: list[RunListener] | None = None,
    on_started: Callable[[WandbRun, str], None] | None = None,
    queued: Run | None = None,
    rerun_of: str | None = None,
    store_grace: float | None = None,
) -> RecordedRun:
    """Resolve the model, start WandB, write the run row, train and evaluate, and record how it ended.

    Bad input (a model that cannot be found) fails before anything is written. After the row is
    written every ending is recorded: finished, failed (with the error), interrupted (Ctrl-C, SIGTERM).
    Under a launcher every process calls this; only the main one touches the store, WandB and ``listeners``.
    ``queued`` is a sweep's queued row: the run takes its ID (and WandB run ID), sweep and arm. ``rerun_of`` is the
    run this one runs again (grpo-lab rerun).
    """
    check_processes(config, launch.world_size())
    criteria.parse(intent.criteria, config.evaluated_sets())  # bad criteria fail before anything is written
    ranks = launch.ranks()
    wb, row, start = None, None, _Start()
    if ranks.main:
        try:
            resolved = resolve_model(config.model_name, store)
            check_device(config)
            started_at = now()
            wb_config = {
                **config.to_dict(),
                "timestamp": iso(started_at),
                "hypothesis": intent.hypothesis,
                "preset": intent.preset,
            }
            wb = tracking.start(wandb_mode, config.exp_name, config.tags, wb_config, wandb_project, wandb_entity,
                                resume_id=queued.id if queued else None)  # fmt: skip
            output_dir = config.output_dir or str(Path("runs") / wb.id)
            sweep = {"sweep_id": queued.sweep_id, "arm": queued.arm} if queued else {}
            args = ["run", *config.command_args(), *intent_args(intent.hypothesis, intent.expected, intent.criteria)]
            row = _run_row(
                wb.id, "train", intent.argv, args, config.to_dict(), resolved, started_at,
                task=json.dumps(task_record(config)), suites=suite_records(config.loaded_suites()),
                exp_name=config.exp_name, hypothesis=intent.hypothesis, expected=intent.expected,
                criteria=intent.criteria, preset=intent.preset, tags=json.dumps(config.tags), output_dir=output_dir,
                wandb_mode=wb.mode, wandb_project=wb.project, wandb_entity=wb.entity, wandb_url=wb.url,
                wandb_dir=wb.dir, rerun_of=rerun_of, **sweep,
            )  # fmt: skip
            start = _Start(wb.id, output_dir, resolved)
        except Exception as exc:
            launch.from_main(_Start(error=f"the main process could not start the run: {exc}"))
            raise
    start = launch.from_main(start)
    if start.error:
        raise GrpoLabError(start.error)
    recorder = StoreRecorder(store, start.run_id) if ranks.main else None
    return _record(config, store, ranks, wb, row, start, recorder, listeners, on_started, queued=queued is not None,
                   store_grace=store_grace)  # fmt: skip


def _record(config, store, ranks, wb, row, start: _Start, recorder, listeners, on_started, resumed_at=None,
            queued=False, resumed_steps=(), store_grace=None):  # fmt: skip
    """The part of a recorded run that every process shares: the lifecycle around the work, and its ending. The
    main process records through a spool, so that the run outlives an unreachable store (store/spool.py)."""
    life = Lifecycle(ranks=ranks)
    if ranks.main:
        here = (socket.gethostname(), os.getpid())
        store = recorder.store = spool.Spooled(store, row.id, spool.path_for(start.output_dir), *here)
        life = Lifecycle(store, row, ranks, reopen=resumed_at is not None, queued=queued)
    outcome = None
    with life:
        if on_started and ranks.main:
            on_started(wb, start.output_dir)
        mine = [recorder, *tracking.listeners(wb), *(listeners or [])] if ranks.main else []
        outcome = execute(config, start.output_dir, mine, start.resolved, start.checkpoint)
    with life.finishing():
        if recorder is not None:
            try:
                recorder.flush()
            except StoreError as exc:  # a full disk, say: what was pending is lost, how the run ended is recorded
                recorder.drop_pending()
                if life.status == "finished":
                    life.status, life.error, life.exit_code = "failed", f"StoreError: {exc}", 1
            values = recorder.metrics()
            conditions = criteria.parse(row.criteria, config.evaluated_sets())
            verdict = criteria.decide(row.criteria, conditions, values, life.status)
            train_seconds = outcome.train_seconds if outcome else None
            if resumed_at is not None and row.train_seconds and train_seconds is not None:
                train_seconds += row.train_seconds  # the training time of every stretch of the run
            life.finish(metrics=values, train_seconds=train_seconds, verdict=verdict.status,
                        verdict_detail=verdict.detail)  # fmt: skip
            if resumed_at is not None:
                note = resume_note(start.checkpoint, resumed_at, resumed_steps, life.status, life.error)
                store.add_note(row.id, note, "comment")
            grace, unsent = spool.grace_seconds(store_grace), None
            if store.settle(grace, life.status, life.error) is not None:  # the store stayed away: the spool has it
                unsent = store.give_up_line(store.location, grace)
            final = {"final_accuracy": values.get("held_out"), "verdict": verdict.status, **values}
            tracking.finish(wb, final, life.exit_code)
            return RecordedRun(start.run_id, life.status, outcome, wb, life.error, life.exit_code, verdict, unsent)
    return RecordedRun(start.run_id, life.status, outcome, wb, life.error, life.exit_code)


def task_record(config: RunConfig) -> dict:
    """What a run records about the code that made its problems and rewards: the task (name, version, source
    file, SHA-256) and every reward --reward added from a module or file."""
    from .rewards import REWARDS, TASK, load_reward, parse_spec

    rewards = []
    for term in parse_spec(config.reward, builtin_task=config.task is None):
        if term.name not in REWARDS and term.name != TASK:
            rewards.append({**load_reward(term.name)[1].to_dict(), "weight": term.weight})
        elif term.name == TASK:  # the task's own: its functions (their code is the task's file)
            names = [getattr(fn, "__name__", "?") for fn, _ in config.task_object().reward_functions()]
            rewards.append({"name": term.name, "functions": names, "weight": term.weight})
        else:
            rewards.append({"name": term.name, "weight": term.weight})
    return {"task": config.task_info().to_dict(), "rewards": rewards}


RESUMABLE = ("interrupted", "crashed", "failed")


def resume_run(
    run_ref: str,
    store,
    wandb_mode: str | None = None,
    listeners: list[RunListener] | None = None,
    on_started: Callable[[WandbRun, str], None] | None = None,
    store_grace: float | None = None,
) -> RecordedRun:
    """Continue an interrupted, crashed or failed run from its newest checkpoint, in the same run row and the
    same WandB run: what it recorded after that checkpoint is dropped and recorded again, so the step curve
    has neither duplicates nor gaps. Under a launcher every process calls this; the main one decides."""
    ranks = launch.ranks()
    wb, row, start, step = None, None, _Start(), None
    if ranks.main:
        try:
            row, config, checkpoint, step = resumable(store, run_ref)
            check_processes(config, launch.world_size())
            resolved = resolve_model(config.model_name, store)
            check_device(config)
            mode = wandb_mode or row.wandb_mode or "disabled"
            wb_config = {**config.to_dict(), "hypothesis": row.hypothesis, "preset": row.preset}
            wb = tracking.start(mode, config.exp_name, config.tags, wb_config, row.wandb_project, row.wandb_entity,
                                resume_id=row.id)  # fmt: skip
            start = _Start(row.id, row.output_dir, resolved, None, config.to_dict(), checkpoint)
        except Exception as exc:
            launch.from_main(_Start(error=f"the main process could not resume the run: {exc}"))
            raise
    start = launch.from_main(start)
    if start.error:
        raise GrpoLabError(start.error)
    config = RunConfig.from_dict(start.config)
    recorder = None
    recorded = []
    if ranks.main:
        recorded = [s for s, _ in store.steps(row.id)]
        store.rewind(row.id, step)
        recorder = StoreRecorder(store, row.id)
        recorder.steps = store.steps(row.id)
        recorder.results = [(r.stage, r.split, r.dimension, r.grp, r.correct, r.total) for r in store.results(row.id)]
        row.wandb_dir = wb.dir = tracking.joined(row.wandb_dir, wb.dir)  # every stretch's folder, in the record
    return _record(config, store, ranks, wb, row, start, recorder, listeners, on_started, resumed_at=step,
                   resumed_steps=recorded, store_grace=store_grace)  # fmt: skip


def resumable(store, run_ref: str) -> tuple[Run, RunConfig, str, int]:
    """The run, its configuration, its newest checkpoint and that checkpoint's step; or a one-line error."""
    view = store.find_run(run_ref)
    run = view.run
    if run.kind != "train":
        raise GrpoLabError(f"run {run.id} is an evaluation; only training runs can be resumed")
    if run.status not in RESUMABLE:
        raise GrpoLabError(f"run {run.id} is {run.status}; only {', '.join(RESUMABLE)} runs can be resumed")
    if run.output_dir:  # records it kept while the store was away would be written over, and its steps lost
        spool.check_free(spool.path_for(run.output_dir), run.id)
    found = checkpoints(run.output_dir) if run.output_dir else []
    if not found:
        raise GrpoLabError(
            f"run {run.id} has no checkpoint in {run.output_dir} (it ran without --save_steps, or stopped before the "
            "first one); start it again with grpo-lab run"
        )
    step, checkpoint = choose_checkpoint(found, [s for s, _ in store.steps(run.id)])
    config = RunConfig.from_dict(view.config)
    check_unchanged(run.suites, config.loaded_suites())  # it evaluates after training on what it started with
    return run, config, checkpoint, step


def recorded_through(steps: list[int]) -> int:
    """The last step of the unbroken stretch 1, 2, ... that ``steps`` (a run's recorded steps) holds."""
    have, last = set(steps), 0
    while last + 1 in have:
        last += 1
    return last


def choose_checkpoint(found: list[tuple[int, str]], steps: list[int]) -> tuple[int, str]:
    """The checkpoint a resume continues from: the newest whose steps are all in the store, so that the curve has
    no gap (a run recorded by an older grpo-lab may have lost steps written every few seconds); if none is, the
    oldest, and the resume note names the steps that stay missing."""
    through = recorded_through(steps)
    for step, folder in found:  # newest first
        if step <= through:
            return step, folder
    return found[-1]


def resume_note(checkpoint: str, step: int, steps: list[int], status: str, error: str | None) -> str:
    """What a resume did, for the run's notes: where it continued, what it recomputed, how it ended."""
    dropped = sorted(s for s in steps if s > step)
    missing = [s for s in range(recorded_through(steps) + 1, step + 1)]
    parts = [f"resumed from {Path(checkpoint).name} (step {step})"]
    if dropped:
        parts.append(f"{_span(dropped)}, recorded before the stop, recomputed")
    if missing:
        parts.append(f"{_span(missing)} lost before it, missing")
    return f"{'; '.join(parts)}; {status}: {error or 'ok'}"


def _span(steps: list[int]) -> str:
    """``step 3``, ``steps 3-7``, ``steps 3, 5``."""
    if len(steps) == 1:
        return f"step {steps[0]}"
    if steps[-1] - steps[0] == len(steps) - 1:
        return f"steps {steps[0]}-{steps[-1]}"
    return "steps " + ", ".join(map(str, steps))


RUN_PREFIX = "run:"


def resolve_model(name: str, store=None) -> ResolvedModel:
    """Like models.resolve, and ``run:RUN_ID`` names the model a recorded run saved."""
    if not name.startswith(RUN_PREFIX):
        return resolve(name)
    if store is None:
        raise GrpoLabError(f"{name}: run references need a store")
    run = store.find_run(name[len(RUN_PREFIX) :]).run
    if not run.output_dir or not (Path(run.output_dir) / "config.json").exists():
        raise GrpoLabError(f"run {run.id} has no saved model (looked in {run.output_dir}); it may not have finished")
    if model_incomplete(run.output_dir):
        raise GrpoLabError(f"run {run.id}'s saved model in {run.output_dir} is incomplete (its save was cut short); "
                           "train it again, or resume it if it kept checkpoints")  # fmt: skip
    found = resolve(run.output_dir)
    return ResolvedModel(name, found.path, False, weights_checksum(Path(found.path)))


@dataclass
class RecordedEval:
    run_id: str
    status: str  # finished | failed | interrupted
    error: str | None = None
    exit_code: int = 0


def record_eval(
    config: EvalConfig,
    store,
    argv: list[str],
    hypothesis: str | None = None,
    listeners: list[RunListener] | None = None,
    rerun_of: str | None = None,
) -> RecordedEval:
    """Evaluate a model on standard suites and record it as an evaluation-only entry, with the same lifecycle
    as a training run: heartbeat while it works, and finished, failed or interrupted at the end."""
    loaded = config.loaded_suites()
    problems = {suite.name: list(suite.problems) for suite in loaded}
    resolved = resolve_model(config.model_name, store)
    events = Fanout(listeners)
    set_threads(config.threads)
    run_id, started_at = new_run_id(), now()
    name = Path(config.model_name).name or config.model_name
    row = _run_row(run_id, "eval", argv, [*config.command_args(), *intent_args(hypothesis)], config.to_dict(),
                   resolved, started_at, hypothesis=hypothesis, exp_name=f"eval_{name}", tags=json.dumps(["eval"]),
                   rerun_of=rerun_of, suites=suite_records(loaded))  # fmt: skip
    recorder = StoreRecorder(store, run_id)
    life = Lifecycle(store, row)
    with life:
        events.on_model(resolved)
        tokenizer, model = load_tokenizer(resolved.path), load_model(resolved.path).to(device())
        for name, suite in problems.items():
            events.on_stage(f"evaluating {name} ({len(suite)} problems)")
            result = evaluate(model, tokenizer, suite, name, config.max_new_tokens, config.eval_batch_size,
                              events.on_eval_progress)  # fmt: skip
            recorder.on_eval("after", result)
            events.on_eval("after", result)
    with life.finishing():
        verdict = criteria.decide(None, None, {}, life.status)
        life.finish(metrics=recorder.metrics(), verdict=verdict.status, verdict_detail=verdict.detail)
    return RecordedEval(run_id, life.status, life.error, life.exit_code)
