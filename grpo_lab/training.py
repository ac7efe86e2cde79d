"""GRPO training with TRL's GRPOTrainer.

``grpo_args`` maps a RunConfig onto TRL 1.16's GRPOConfig with the settings the seed script
fixed (loss, warmup, weight decay, clipping, optimizer). ``train`` runs the trainer and reports
what happens through a ``TrainingListener`` (per-step metrics and sample completions), so that
recording, progress bars and WandB are plugged in by the caller rather than printed here.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import RunConfig
from .rewards import reward_function

SAMPLES_PER_STEP = 4

# The seed script's fixed GRPO settings, under their TRL 1.16 names.
FIXED_ARGS: dict[str, Any] = {
    "loss_type": "grpo",
    "scale_rewards": "group",
    "warmup_steps": 0.1,  # transformers 5: a float in [0, 1) is a ratio of the total steps (was warmup_ratio)
    "weight_decay": 0.01,
    "max_grad_norm": 1.0,
    "optim": "adamw_torch",
    "logging_steps": 1,
    "save_strategy": "no",
    "disable_tqdm": True,
    "remove_unused_columns": False,  # answer, task_type... reach the reward function as keyword arguments
}


@dataclass(frozen=True)
class Sample:
    step: int
    prompt: str
    completion: str
    reward: float
    advantage: float


class TrainingListener:
    """Receives what training produces; override what you need."""

    def on_train_begin(self, total_steps: int) -> None: ...

    def on_step(self, step: int, metrics: dict[str, float]) -> None: ...

    def on_samples(self, step: int, samples: list[Sample]) -> None: ...


def grpo_args(config: RunConfig, output_dir: str, report_to: list[str] | None = None, cuda: bool | None = None):
    import torch
    from trl import GRPOConfig

    cuda = torch.cuda.is_available() if cuda is None else cuda
    return GRPOConfig(
        output_dir=output_dir,
        per_device_train_batch_size=config.batch_size,  # completions, not prompts
        num_generations=config.num_generations,
        learning_rate=config.learning_rate,
        temperature=config.temperature,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        beta=config.beta,
        max_completion_length=config.max_completion_length,
        seed=config.seed,
        data_seed=config.seed,
        run_name=config.exp_name,
        report_to=report_to or [],
        # WandB gets TRL's completions table; the listener gets samples either way.
        log_completions="wandb" in (report_to or []),
        num_completions_to_print=0,
        # bf16 and gradient checkpointing pay off only on a GPU; on CPU they cost time.
        bf16=cuda,
        gradient_checkpointing=cuda,
        use_cpu=not cuda,
        **FIXED_ARGS,
    )


def _trainer_class():
    from transformers import TrainerCallback
    from trl import GRPOTrainer

    class ListeningTrainer(GRPOTrainer):
        """GRPOTrainer that hands a few of each step's completions to the listener.

        TRL keeps the latest generation batch in ``self._logs`` whether or not it logs
        completions itself; this reads it at every logging step.
        """

        listener: TrainingListener

        _sampled_step = -1

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            fresh = self.state.global_step != self._sampled_step  # the closing summary log repeats the last step
            samples = self._take_samples() if fresh else []
            super().log(logs, start_time)
            if samples:
                self._sampled_step = self.state.global_step
                self.listener.on_samples(self.state.global_step, samples)

        def _take_samples(self) -> list[Sample]:
            prompts, completions = list(self._logs["prompt"]), list(self._logs["completion"])
            if not prompts:
                return []
            rewards = next(iter(self._logs["rewards"].values()), [])
            rewards, advantages = list(rewards), list(self._logs["advantages"])
            stride = max(1, len(prompts) // SAMPLES_PER_STEP)
            step = self.state.global_step
            return [
                Sample(step, str(prompts[i]), str(completions[i]), float(rewards[i]), float(advantages[i]))
                for i in range(0, len(prompts), stride)[:SAMPLES_PER_STEP]
            ]

    class MetricsCallback(TrainerCallback):
        def __init__(self, listener: TrainingListener):
            self.listener = listener

        def on_train_begin(self, args, state, control, **kwargs):
            self.listener.on_train_begin(state.max_steps)

        def on_log(self, args, state, control, logs=None, **kwargs):
            numeric = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, int | float) and v is not None}
            if "train_runtime" not in numeric:  # the closing summary is not a step
                self.listener.on_step(state.global_step, numeric)

    return ListeningTrainer, MetricsCallback


def train(
    config: RunConfig,
    model,
    tokenizer,
    train_dataset,
    output_dir: str,
    listener: TrainingListener | None = None,
    report_to: list[str] | None = None,
):
    """Train ``model`` in place with GRPO and save it with its tokenizer to ``output_dir``.

    Returns the trained model and the wall time of the training phase (trainer construction,
    training, saving), measured after TRL is imported so that it compares with a bare TRL script.
    """
    listener = listener or TrainingListener()
    trainer_cls, callback_cls = _trainer_class()
    args = grpo_args(config, output_dir, report_to)
    started = time.perf_counter()
    trainer = trainer_cls(
        model=model,
        reward_funcs=reward_function(config.reward),
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        callbacks=[callback_cls(listener)],
    )
    trainer.listener = listener
    # Metrics go to the listener; transformers would otherwise print every log dict.
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.train()
    save_checkpoint(output_dir, trainer.save_model, tokenizer.save_pretrained)
    return trainer.model, time.perf_counter() - started


PARTIAL = ".partial-"  # a checkpoint being written: .NAME.partial-XXXX beside its folder


def save_checkpoint(output_dir: str, *savers: Callable[[str], object]) -> None:
    """Save a checkpoint all or nothing: each saver writes into a temporary folder beside ``output_dir``, which
    is then renamed to it. A full disk or an interruption mid-write leaves no half-written model that would
    later load as one (``eval --model_name run:ID`` finds no model instead); the temporary folder is removed.
    ``output_dir`` may exist only as an empty folder (TRL makes it when training starts)."""
    target = Path(output_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}{PARTIAL}", dir=target.parent))
    try:
        for save in savers:
            save(str(staging))
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        staging.rename(target)  # fails, keeping what is there, if the folder has filled up meanwhile
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
