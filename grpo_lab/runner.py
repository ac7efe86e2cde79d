"""One run's lifecycle: data -> model -> evaluate before -> train -> evaluate after.

Everything that happens is sent to ``RunListener``s (the CLI's live view, the store's
recorder, ...); the runner itself prints nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import tasks
from .config import RunConfig
from .evaluation import EvalResult, evaluate
from .models import ResolvedModel, load_model, load_tokenizer, resolve
from .training import Sample, TrainingListener, train

STAGES = ("before", "after")


class RunListener(TrainingListener):
    """Receives a run's events; override what you need."""

    def on_stage(self, description: str) -> None: ...

    def on_model(self, model: ResolvedModel) -> None: ...

    def on_eval_progress(self, done: int, total: int) -> None: ...

    def on_eval(self, stage: str, result: EvalResult) -> None: ...


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

    def on_train_begin(self, total_steps):
        self._emit("on_train_begin", total_steps)

    def on_step(self, step, metrics):
        self._emit("on_step", step, metrics)

    def on_samples(self, step, samples):
        self._emit("on_samples", step, samples)


@dataclass
class RunOutcome:
    config: RunConfig
    model: ResolvedModel
    output_dir: str
    results: dict[str, dict[str, EvalResult]] = field(default_factory=dict)  # stage -> split -> result


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
) -> RunOutcome:
    """Run one GRPO experiment end to end. Exceptions propagate; listeners have seen everything before them."""
    events = _Fanout(listeners or [])
    set_threads(config.threads)
    events.on_stage("resolving model")
    resolved = resolve(config.model_name)
    events.on_model(resolved)
    train_problems, held_out = datasets_for(config)
    events.on_stage("loading model")
    tokenizer = load_tokenizer(resolved.path)
    model = load_model(resolved.path)
    outcome = RunOutcome(config, resolved, str(output_dir))
    splits = {"train": train_problems, "held_out": held_out}

    def run_evals(stage: str) -> None:
        outcome.results[stage] = {}
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
            outcome.results[stage][split] = result
            events.on_eval(stage, result)

    run_evals("before")
    events.on_stage("training")
    model = train(config, model, tokenizer, tasks.to_dataset(train_problems), str(output_dir), events, report_to)
    run_evals("after")
    return outcome


__all__ = ["RunListener", "RunOutcome", "Sample", "execute", "datasets_for", "STAGES"]
