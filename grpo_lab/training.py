"""GRPO training with TRL's GRPOTrainer.

``grpo_args`` maps a RunConfig onto TRL 1.16's GRPOConfig with the settings the seed script
fixed (loss, warmup, weight decay, clipping, optimizer). ``train`` runs the trainer and reports
what happens through a ``TrainingListener`` (per-step metrics and sample completions), so that
recording, progress bars and WandB are plugged in by the caller rather than printed here.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import RunConfig
from .errors import ConfigError
from .events import RunListener, Sample
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
    "disable_tqdm": True,
    "ddp_find_unused_parameters": False,  # every parameter of a causal LM takes part; the search costs a pass
    "remove_unused_columns": False,  # answer, task_type... reach the reward function as keyword arguments
}


TrainingListener = RunListener  # training sends on_train_begin, on_step and on_samples


def device():
    """The device this process computes on, as accelerate assigns it (cuda:LOCAL_RANK under a launcher, else
    the GPU if there is one, else the CPU)."""
    from .launch import state

    return state().device


def check_device(config: RunConfig) -> None:
    """Refuse, before anything is recorded, what this machine cannot run."""
    import torch

    if config.use_vllm and not torch.cuda.is_available():
        raise ConfigError("--use_vllm needs a CUDA GPU (vLLM's colocate mode shares the training GPU); none is visible")


def device_args(cuda: bool, bf16_supported: bool) -> dict[str, Any]:
    """GRPOConfig's device settings. On CUDA: bf16 mixed precision where the GPU supports it (Ampere and newer)
    and gradient checkpointing, TRL's defaults for GRPO; on CPU neither, since both cost time there."""
    return {"use_cpu": not cuda, "bf16": cuda and bf16_supported, "gradient_checkpointing": cuda}


def checkpoint_args(config: RunConfig) -> dict[str, Any]:
    """TRL checkpoints every ``save_steps`` (output_dir/checkpoint-N: model, optimizer, scheduler, RNG states),
    the newest ``save_total_limit`` kept; none without ``save_steps``."""
    if config.save_steps is None:
        return {"save_strategy": "no"}
    return {"save_strategy": "steps", "save_steps": config.save_steps, "save_total_limit": config.save_total_limit}


def checkpoints(output_dir: str) -> list[tuple[int, str]]:
    """The whole checkpoint-N folders under ``output_dir`` as (N, folder), newest first. A checkpoint is whole once
    its trainer_state.json exists: the trainer writes that file last, so a save cut short is never resumed from."""
    if not os.path.isdir(output_dir):
        return []
    found = []
    for entry in os.scandir(output_dir):
        name, _, number = entry.name.rpartition("-")
        if name == "checkpoint" and number.isdigit() and os.path.isfile(os.path.join(entry.path, "trainer_state.json")):
            found.append((int(number), entry.path))
    return sorted(found, reverse=True)


def grpo_args(config: RunConfig, output_dir: str):
    import torch
    from trl import GRPOConfig

    from .launch import state

    cuda = torch.cuda.is_available()
    processes = state().num_processes
    if config.batch_size % processes:
        step = math.lcm(processes, config.num_generations)
        fits = max(step, config.batch_size // step * step)
        raise ConfigError(
            f"--batch_size {config.batch_size} counts the completions of one step over all {processes} processes "
            f"and must divide evenly among them; try --batch_size {fits}"
        )
    return GRPOConfig(
        output_dir=output_dir,
        # batch_size counts the completions of one optimizer step over every process, so a run means the same
        # experiment on 1 process or on N; each process generates and trains on its share.
        per_device_train_batch_size=config.batch_size // processes,
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
        # TRL reports to nothing itself: the run's listeners record it (the store; WandB at step = training step,
        # tracking.WandbListener, with the samples the reward function hands them).
        report_to=[],
        log_completions=False,
        num_completions_to_print=0,
        **checkpoint_args(config),
        use_vllm=config.use_vllm,
        vllm_mode="colocate",
        **device_args(cuda, cuda and torch.cuda.is_bf16_supported()),
        **FIXED_ARGS,
    )


def group_advantages(rewards: list[float]) -> list[float]:
    """GRPO's advantages within one group of completions of a prompt, as TRL computes them with
    scale_rewards="group": (reward - group mean) / (group std + 1e-4), the std with Bessel's correction."""
    n = len(rewards)
    mean = sum(rewards) / n
    std = (sum((r - mean) ** 2 for r in rewards) / (n - 1)) ** 0.5 if n > 1 else 0.0
    return [(r - mean) / (std + 1e-4) for r in rewards]


def pick_samples(
    step: int, prompts: list[str], completions: list[str], rewards: list[float], group_size: int, count: int
) -> list[Sample]:
    """Up to ``count`` completions of a generation batch, each from a different prompt group, evenly spread.

    TRL lays a batch out as groups of ``group_size`` consecutive completions of one prompt; a process's share
    of it may cut a group, so only whole groups (whose advantages can be computed) are sampled.
    """
    groups, start = [], 0
    while start < len(prompts):
        end = start
        while end < len(prompts) and prompts[end] == prompts[start] and end - start < group_size:
            end += 1
        if end - start == group_size:
            groups.append((start, end))
        start = end
    stride = max(1, len(groups) // count)
    samples = []
    for start, end in groups[::stride][:count]:
        advantage = group_advantages(rewards[start:end])[0]
        samples.append(Sample(step, prompts[start], completions[start], float(rewards[start]), advantage))
    return samples


def sampling_reward(name: str, listener: TrainingListener, group_size: int) -> Callable:
    """The run's reward function, which also hands a few of each step's completions to ``listener``.

    TRL calls the reward function with every completion of a generation batch, its prompt, the dataset's
    columns and the trainer state, so samples are taken here rather than from TRL's internals.
    """
    score = reward_function(name)

    def reward(prompts, completions, answer, trainer_state=None, **kwargs):
        rewards = score(prompts=prompts, completions=completions, answer=answer, **kwargs)
        step = (trainer_state.global_step if trainer_state is not None else 0) + 1  # the step being generated for
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        listener.on_samples(step, pick_samples(step, list(prompts), texts, rewards, group_size, SAMPLES_PER_STEP))
        return rewards

    reward.__name__ = score.__name__  # TRL names the logged metric after it: rewards/binary_reward/mean
    return reward


def _metrics_callback(listener: TrainingListener):
    from transformers import TrainerCallback

    class MetricsCallback(TrainerCallback):
        """Hands each logged step's metrics (TRL's, averaged over every process) to the listener, and says when a
        checkpoint is about to be written, so that everything recorded up to it reaches the store first."""

        def on_train_begin(self, args, state, control, **kwargs):
            listener.on_train_begin(state.max_steps)

        def on_log(self, args, state, control, logs=None, **kwargs):
            numeric = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, int | float) and v is not None}
            if "train_runtime" not in numeric:  # the closing summary is not a step
                listener.on_step(state.global_step, numeric)
                if control.should_save:  # the trainer saves a checkpoint right after logging this step
                    listener.on_checkpoint(state.global_step)

    return MetricsCallback()


def train(
    config: RunConfig,
    model,
    tokenizer,
    train_dataset,
    output_dir: str,
    listener: TrainingListener | None = None,
    resume_from: str | None = None,
):
    """Train ``model`` in place with GRPO and save it with its tokenizer to ``output_dir``; ``resume_from``
    (a checkpoint folder) continues a run where that checkpoint left it, as TRL resumes: the weights,
    optimizer, scheduler, RNG states and the position in the data are restored.

    Returns the trained model and the wall time of the training phase (trainer construction,
    training, saving), measured after TRL is imported so that it compares with a bare TRL script.
    """
    from trl import GRPOTrainer

    listener = listener or TrainingListener()
    args = grpo_args(config, output_dir)
    started = time.perf_counter()
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=sampling_reward(config.reward, listener, config.num_generations),
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        callbacks=[_metrics_callback(listener)],
    )
    # Metrics go to the listener; transformers would otherwise print every log dict.
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)

    trainer.train(resume_from_checkpoint=resume_from)
    save_marked(output_dir, trainer.save_model, tokenizer.save_pretrained, trainer.accelerator.is_main_process)
    return trainer.model, time.perf_counter() - started


INCOMPLETE = ".grpo-lab-incomplete"  # in a run's output folder while its trained model is being saved


def save_marked(output_dir: str, save_all: Callable[[str], object], save_main: Callable[[str], object],
                main: bool = True) -> None:  # fmt: skip
    """Save the trained model with a marker in its folder until the save is whole: a save cut short (a full
    disk, a kill) leaves the marker, and the folder never loads as a model (``model_incomplete``). ``save_all``
    runs on every process (TRL's save_model gathers the weights), ``save_main`` on the main one."""
    marker = Path(output_dir) / INCOMPLETE
    if main:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("the trained model was being saved here and the save did not finish\n")
    save_all(output_dir)
    if main:
        save_main(output_dir)
        marker.unlink()


def model_incomplete(output_dir: str | Path) -> bool:
    """Whether the save of a run's trained model was cut short (a full disk, a kill): it must not load as one."""
    return (Path(output_dir) / INCOMPLETE).exists()
