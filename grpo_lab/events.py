"""What a run tells the parts that watch it: one small listener protocol.

Training, the runner, the store's recorder and the terminal view all speak it, and none of them imports
another to do so. A listener overrides what it needs; ``Fanout`` sends every event to several in turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .evaluation import EvalResult
    from .models import ResolvedModel
    from .tasks import Problem


@dataclass(frozen=True)
class Sample:
    """One sampled completion of a training step, with its reward and its advantage within its group."""

    step: int
    prompt: str
    completion: str
    reward: float
    advantage: float
    answer: str | None = None  # the answer the completion gives (its task's rule), when known


class RunListener:
    """Receives a run's events; every method does nothing unless overridden."""

    # training
    def on_train_begin(self, total_steps: int) -> None: ...

    def on_step(self, step: int, metrics: dict[str, float]) -> None: ...

    def on_samples(self, step: int, samples: list[Sample]) -> None: ...

    def on_checkpoint(self, step: int) -> None:
        """A checkpoint of ``step`` is about to be written: a resume may start from it, so whatever a listener
        keeps of the steps up to it must be kept for good before this returns."""

    # the rest of a run
    def on_stage(self, description: str) -> None: ...

    def on_model(self, model: ResolvedModel) -> None: ...

    def on_eval_progress(self, done: int, total: int) -> None: ...

    def on_eval(self, stage: str, result: EvalResult) -> None: ...

    def on_splits(self, splits: dict[str, list[Problem]]) -> None:
        """The run's problem sets: train, held_out and each suite under its recorded name."""


class Fanout(RunListener):
    """Sends every event to each listener in turn."""

    def __init__(self, listeners: list[RunListener] | None = None):
        self.listeners = list(listeners or [])

    def on_train_begin(self, total_steps):
        for listener in self.listeners:
            listener.on_train_begin(total_steps)

    def on_step(self, step, metrics):
        for listener in self.listeners:
            listener.on_step(step, metrics)

    def on_samples(self, step, samples):
        for listener in self.listeners:
            listener.on_samples(step, samples)

    def on_checkpoint(self, step):
        for listener in self.listeners:
            listener.on_checkpoint(step)

    def on_stage(self, description):
        for listener in self.listeners:
            listener.on_stage(description)

    def on_model(self, model):
        for listener in self.listeners:
            listener.on_model(model)

    def on_eval_progress(self, done, total):
        for listener in self.listeners:
            listener.on_eval_progress(done, total)

    def on_eval(self, stage, result):
        for listener in self.listeners:
            listener.on_eval(stage, result)

    def on_splits(self, splits):
        for listener in self.listeners:
            listener.on_splits(splits)
