"""One run's lifecycle: data -> model -> evaluate before -> train -> evaluate after.

Everything that happens is sent to ``RunListener``s (the CLI's live view, the store's
recorder, ...); the runner itself prints nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import criteria, metrics, provenance, tasks, tracking
from .config import RunConfig
from .errors import GrpoLabError, Terminated
from .evaluation import EvalResult, evaluate
from .ids import new_run_id
from .models import ResolvedModel, load_model, load_tokenizer, resolve, weights_checksum
from .store.db import HEARTBEAT_SECONDS, Run, iso, now
from .suites import load_suite, suite_name
from .tracking import WandbRun
from .training import TrainingListener, train


class RunListener(TrainingListener):
    """Receives a run's events; override what you need."""

    def on_stage(self, description: str) -> None: ...

    def on_model(self, model: ResolvedModel) -> None: ...

    def on_eval_progress(self, done: int, total: int) -> None: ...

    def on_eval(self, stage: str, result: EvalResult) -> None: ...

    def on_splits(self, splits: dict[str, list[tasks.Problem]]) -> None:
        """The problem sets of the run: train, held_out and each suite by its recorded name."""


class _Fanout(RunListener):
    """Sends every event to each listener in turn."""

    def __init__(self, listeners: list[RunListener]):
        self.listeners = listeners

    def _emit(self, event: str, *args) -> None:
        for listener in self.listeners:
            getattr(listener, event)(*args)

    def on_stage(self, description):
        self._emit("on_stage", description)

    def on_model(self, model):
        self._emit("on_model", model)

    def on_eval_progress(self, done, total):
        self._emit("on_eval_progress", done, total)

    def on_eval(self, stage, result):
        self._emit("on_eval", stage, result)

    def on_splits(self, splits):
        self._emit("on_splits", splits)

    def on_train_begin(self, total_steps):
        self._emit("on_train_begin", total_steps)

    def on_step(self, step, metrics):
        self._emit("on_step", step, metrics)

    def on_samples(self, step, samples):
        self._emit("on_samples", step, samples)


@dataclass
class RunOutcome:
    output_dir: str  # where the trained model was saved
    train_seconds: float | None = None  # the training phase's wall time


def datasets_for(config: RunConfig) -> tuple[list[tasks.Problem], list[tasks.Problem]]:
    """The run's training problems and held-out problems of the same kind (none of them in training)."""
    train_problems = tasks.generate_problems(
        config.dataset_type, config.n_samples, config.min_num, config.max_num, config.seed
    )
    held_out = tasks.held_out_problems(
        config.dataset_type, config.eval_samples, train_problems, config.min_num, config.max_num, config.seed
    )
    return train_problems, held_out


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
    report_to: list[str] | None = None,
    resolved: ResolvedModel | None = None,
) -> RunOutcome:
    """Run one GRPO experiment end to end. Exceptions propagate; listeners have seen everything before them."""
    events = _Fanout(listeners or [])
    set_threads(config.threads)
    resolved = resolved or resolve(config.model_name)
    events.on_model(resolved)
    train_problems, held_out = datasets_for(config)
    events.on_stage("loading model")
    tokenizer = load_tokenizer(resolved.path)
    model = load_model(resolved.path)
    outcome = RunOutcome(str(output_dir))
    suites = {suite_name(name): load_suite(name) for name in config.eval_suites}
    splits = {"train": train_problems, "held_out": held_out, **suites}
    events.on_splits(splits)

    def run_evals(stage: str) -> None:
        for split, problems in splits.items():
            if not problems:
                continue
            events.on_stage(f"evaluating {stage} training: {split} ({len(problems)} problems)")
            result = evaluate(
                model,
                tokenizer,
                problems,
                split,
                config.max_completion_length,
                config.eval_batch_size,
                on_progress=events.on_eval_progress,
            )
            events.on_eval(stage, result)

    run_evals("before")
    events.on_stage("training")
    dataset = tasks.to_dataset(train_problems)
    model, outcome.train_seconds = train(config, model, tokenizer, dataset, str(output_dir), events, report_to)
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

    def on_samples(self, step, samples):
        self._pending_samples += [
            (step, i, s.prompt, s.completion, s.reward, s.advantage) for i, s in enumerate(samples)
        ]

    def on_eval(self, stage, result):
        rows = [(stage, result.split, "overall", "", result.overall.correct, result.overall.total)]
        for dim, groups in result.groups().items():
            rows += [(stage, result.split, dim, group, c.correct, c.total) for group, c in groups.items()]
        self.results += rows
        predictions = [(stage, result.split, i, p) for i, p in enumerate(result.predictions)]
        self.store.record(self.run_id, results=rows, predictions=predictions)

    def flush(self):
        if self._pending_steps or self._pending_samples:
            self.store.record(self.run_id, steps=self._pending_steps, samples=self._pending_samples)
            self._pending_steps, self._pending_samples = [], []
        self._last_flush = time.monotonic()


class _Heartbeat:
    """Refreshes the run's heartbeat from a background thread, so that a long step does not look like a crash."""

    def __init__(self, store, run_id: str, seconds: float):
        self.store, self.run_id, self.seconds = store, run_id, seconds
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name="grpo-lab-heartbeat")

    def _beat(self):
        while not self.stop_event.wait(self.seconds):
            with contextlib.suppress(Exception):  # a busy store must never kill the run; the next beat retries
                self.store.heartbeat(self.run_id)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join(timeout=5)


def _raise_terminated(signum, frame):
    raise Terminated()


@dataclass
class RecordedRun:
    run_id: str
    status: str  # finished | failed | interrupted
    outcome: RunOutcome | None
    wandb: WandbRun
    error: str | None = None
    exit_code: int = 0
    verdict: criteria.Verdict | None = None


def _run_row(run_id, kind, argv, args, config, resolved, started_at, **fields) -> Run:
    """A new run row with its provenance: the command as typed and one that reproduces it (secrets
    redacted), the resolved configuration, host, pid, library versions, environment, git state, model."""
    commit, dirty = provenance.git_state()
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
        git_commit=commit,
        git_dirty=dirty,
        model_name=config["model_name"],
        model_path=resolved.path,
        model_checksum=resolved.checksum,
        **fields,
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
) -> RecordedRun:
    """Resolve the model, start WandB, write the run row, train and evaluate, and record how it ended.

    Bad input (a model that cannot be found) fails before anything is written. After the row is
    written every ending is recorded: finished, failed (with the error), interrupted (Ctrl-C, SIGTERM).
    """
    conditions = criteria.parse(intent.criteria, config.evaluated_sets())  # bad criteria fail before anything
    resolved = resolve_model(config.model_name, store)
    started_at = now()
    wb_config = {
        **config.to_dict(),
        "timestamp": iso(started_at),
        "hypothesis": intent.hypothesis,
        "preset": intent.preset,
    }
    wb = tracking.start(wandb_mode, config.exp_name, config.tags, wb_config, wandb_project, wandb_entity)
    output_dir = config.output_dir or str(Path("runs") / wb.id)
    run = _run_row(
        wb.id, "train", intent.argv, ["run", *config.command_args()], config.to_dict(), resolved, started_at,
        exp_name=config.exp_name, hypothesis=intent.hypothesis, expected=intent.expected, criteria=intent.criteria,
        preset=intent.preset, tags=json.dumps(config.tags), output_dir=output_dir, wandb_mode=wb.mode,
        wandb_project=wb.project, wandb_entity=wb.entity, wandb_url=wb.url, wandb_dir=wb.dir,
    )  # fmt: skip
    store.create_run(run)
    if on_started:
        on_started(wb, output_dir)
    recorder = StoreRecorder(store, wb.id)
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if on_main_thread else None
    status, error, outcome, exit_code = "finished", None, None, 0
    report_to = ["wandb"] if wb.mode != "disabled" else []
    try:
        with _Heartbeat(store, wb.id, HEARTBEAT_SECONDS):
            outcome = execute(config, output_dir, [recorder, *(listeners or [])], report_to, resolved)
    except KeyboardInterrupt:
        status, error, exit_code = "interrupted", "interrupted by Ctrl-C", 130
    except Terminated:
        status, error, exit_code = "interrupted", "terminated by SIGTERM", 143
    except Exception as exc:  # recorded here; the caller reports it
        status, error, exit_code = "failed", f"{type(exc).__name__}: {exc}", 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    with _interrupts_deferred():  # Ctrl-C pressed again cannot cut the record of how the run ended
        recorder.flush()
        values = recorder.metrics()
        verdict = criteria.decide(intent.criteria, conditions, values, status)
        train_seconds = outcome.train_seconds if outcome else None
        store.finish_run(wb.id, status, error, metrics=values, train_seconds=train_seconds,
                         verdict=verdict.status, verdict_detail=verdict.detail)  # fmt: skip
    try:
        tracking.finish(wb, {"final_accuracy": values.get("held_out"), "verdict": verdict.status, **values}, exit_code)
    except KeyboardInterrupt:  # the store has it all; WandB's copy can be synced later
        status, exit_code = status if status != "finished" else "interrupted", 130
        error = error or "interrupted by Ctrl-C while WandB was closing (the store holds everything)"
    return RecordedRun(wb.id, status, outcome, wb, error, exit_code, verdict)


@contextlib.contextmanager
def _interrupts_deferred():
    """Ignore Ctrl-C for the moment it takes to write a run's ending (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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
    found = resolve(run.output_dir)
    return ResolvedModel(name, found.path, False, weights_checksum(Path(found.path)))


def record_eval(
    model_name: str,
    suites: list[str],
    store,
    argv: list[str],
    batch_size: int = 256,
    max_new_tokens: int = 16,
    threads: int = 1,
    hypothesis: str | None = None,
    listeners: list[RunListener] | None = None,
) -> str:
    """Evaluate a model on standard suites and record it as an evaluation-only entry; returns its run ID."""
    problems = {suite_name(name): load_suite(name) for name in suites}  # bad suites fail before anything is written
    resolved = resolve_model(model_name, store)
    events = _Fanout(listeners or [])
    set_threads(threads)
    run_id, started_at = new_run_id(), now()
    config = {"model_name": model_name, "suites": suites, "eval_batch_size": batch_size,
              "max_new_tokens": max_new_tokens, "threads": threads}  # fmt: skip
    eval_args = ["eval", "--model_name", model_name, *[a for s in suites for a in ("--suite", s)],
                 "--batch_size", str(batch_size), "--max_new_tokens", str(max_new_tokens)]  # fmt: skip
    store.create_run(
        _run_row(
            run_id,
            "eval",
            argv,
            eval_args,
            config,
            resolved,
            started_at,
            hypothesis=hypothesis,
            exp_name=f"eval_{Path(model_name).name or model_name}",
            tags=json.dumps(["eval"]),
        )  # fmt: skip
    )
    recorder = StoreRecorder(store, run_id)
    status, error = "finished", None
    try:
        events.on_model(resolved)
        tokenizer, model = load_tokenizer(resolved.path), load_model(resolved.path)
        for name, suite in problems.items():
            events.on_stage(f"evaluating {name} ({len(suite)} problems)")
            result = evaluate(model, tokenizer, suite, name, max_new_tokens, batch_size, events.on_eval_progress)
            recorder.on_eval("after", result)
            events.on_eval("after", result)
    except KeyboardInterrupt:
        status, error = "interrupted", "interrupted by Ctrl-C"
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    verdict = criteria.decide(None, None, {}, status)
    store.finish_run(run_id, status, error, metrics=recorder.metrics(), verdict=verdict.status,
                     verdict_detail=verdict.detail)  # fmt: skip
    if status != "finished":
        raise GrpoLabError(f"evaluation {run_id} {status}: {error} (recorded in the store)")
    return run_id
