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

SAMPLES_PER_STEP = 4

# What grpo-lab always sets, whatever the flags (the GRPO settings researchers vary are RunConfig's flags).
FIXED_ARGS: dict[str, Any] = {
    "optim": "adamw_torch",
    "logging_steps": 1,
    "disable_tqdm": True,
    "ddp_find_unused_parameters": False,  # every parameter of a causal LM takes part; the search costs a pass
    "remove_unused_columns": False,  # answer, task_type... reach the reward function as keyword arguments
}


def knob_args(config: RunConfig) -> dict[str, Any]:
    """The GRPO settings of a run under TRL 1.16's GRPOConfig names (the seed's by default)."""
    warmup = config.warmup if config.warmup < 1 else int(config.warmup)  # transformers 5: a ratio below 1, else steps
    return {
        "loss_type": config.loss_type,
        "scale_rewards": config.scale_rewards,
        "importance_sampling_level": config.importance_sampling_level,
        "epsilon": config.epsilon,
        "epsilon_high": config.epsilon_high,
        "num_iterations": config.num_iterations,
        "mask_truncated_completions": config.mask_truncated_completions,
        "top_p": config.top_p,
        "top_k": config.top_k,
        "min_p": config.min_p,
        "repetition_penalty": config.repetition_penalty,
        "lr_scheduler_type": config.lr_scheduler_type,
        "warmup_steps": warmup,
        "weight_decay": config.weight_decay,
        "max_grad_norm": config.max_grad_norm,
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
    terms = rewards_of(config)
    device = device_args(cuda, cuda and torch.cuda.is_bf16_supported())
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
        **knob_args(config),
        reward_weights=[weight for _, weight, _ in terms] if len(terms) > 1 else None,
        **FIXED_ARGS,
        **{**device, **config.trl},  # --trl may also set bf16 or gradient_checkpointing, which the device chose
    )


def check_with_trl(config: RunConfig) -> None:
    """Ask TRL whether it takes this configuration (its GRPOConfig's own checks), before anything is written: a
    combination it refuses is one line here instead of a failed run. Imports TRL (seconds): only called when a
    GRPO setting is not the seed's (RunConfig.differs_from_seed)."""
    import tempfile
    import warnings

    with tempfile.TemporaryDirectory(prefix="grpo-lab-check-") as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            grpo_args(config, folder)
        except (ValueError, TypeError) as exc:
            first = " ".join(str(exc).split())
            raise ConfigError(f"TRL refuses this configuration: {first[:300]}") from None


def rewards_of(config: RunConfig) -> list[tuple[Callable, float, str]]:
    """The run's reward functions, their weights and their names (TRL logs rewards/NAME/mean): --reward's terms,
    "task" standing for the task's own rewards."""
    from .rewards import REWARDS, TASK, load_reward, parse_spec

    out = []
    for term in parse_spec(config.reward, builtin_task=config.task is None):
        if term.name in REWARDS:  # logged as rewards/binary_reward/mean, as every run before did
            out.append((REWARDS[term.name], term.weight, REWARDS[term.name].__name__))
        elif term.name == TASK:
            out += [(fn, weight * term.weight, getattr(fn, "__name__", "task")) for fn, weight in
                    config.task_object().reward_functions()]  # fmt: skip
        else:
            fn, info = load_reward(term.name)
            out.append((fn, term.weight, info.name))
    names = [name for _, _, name in out]
    return [(fn, w, name if names.count(name) == 1 else f"{name}_{i}") for i, (fn, w, name) in enumerate(out)]


def group_advantages(rewards: list[float], scale: str = "group", batch_std: float | None = None) -> list[float]:
    """GRPO's advantages within one group of completions of a prompt, as TRL computes them: reward minus the group
    mean, divided (scale_rewards="group", the seed's) by the group's std + 1e-4 (Bessel's correction), or
    ("batch") by the std of the whole batch + 1e-4, or ("none") by nothing."""
    n = len(rewards)
    mean = sum(rewards) / n
    if scale == "none":
        return [r - mean for r in rewards]
    std = batch_std if scale == "batch" and batch_std is not None else _std(rewards)
    return [(r - mean) / (std + 1e-4) for r in rewards]


def _std(values: list[float]) -> float:
    n = len(values)
    mean = sum(values) / n
    return (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else 0.0


def pick_samples(
    step: int, prompts: list[str], completions: list[str], rewards: list[float], group_size: int, count: int,
    scale: str = "group", answers: list[str | None] | None = None,
) -> list[Sample]:  # fmt: skip
    """Up to ``count`` completions of a generation batch, each from a different prompt group, evenly spread, with
    its reward, its advantage (as ``scale`` computes it) and the answer it gives (``answers``, if known).

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
    batch_std = _std(rewards) if rewards else None
    samples = []
    for start, end in groups[::stride][:count]:
        advantage = group_advantages(rewards[start:end], scale, batch_std)[0]
        answer = answers[start] if answers is not None else None
        samples.append(Sample(step, prompts[start], completions[start], float(rewards[start]), advantage, answer))
    return samples


class RewardError(Exception):
    """A reward function misbehaved mid-training (the wrong number of values, a value that is not a finite number):
    the run fails with this as its recorded error."""


def sampling_rewards(config: RunConfig, listener: TrainingListener) -> list[Callable]:
    """The run's reward functions as TRL calls them, each checked (one finite number per completion); the last one
    also hands a few of each step's completions to ``listener``, with their total reward (the weighted sum TRL
    trains on) and the answer each gives (the task's ``extract``).

    TRL calls the reward functions in order with every completion of a generation batch, its prompt, the
    dataset's columns and the trainer state, so samples are taken here rather than from TRL's internals.
    """
    terms = rewards_of(config)
    task = config.task_object()
    from .tasks import Problem

    outputs: list[list[float]] = []

    def wrap(i: int, score: Callable, weight: float, name: str) -> Callable:
        def reward(prompts, completions, answer, trainer_state=None, **kwargs):
            if i == 0:
                outputs.clear()
            values = score(prompts=prompts, completions=completions, answer=answer, **kwargs)
            values = _checked(name, values, len(completions))
            outputs.append(values)
            if i == len(terms) - 1:
                total = [sum(w * out[j] for (_, w, _), out in zip(terms, outputs, strict=True))
                         for j in range(len(completions))]  # fmt: skip
                step = (trainer_state.global_step if trainer_state is not None else 0) + 1  # the step generated for
                texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
                n = len(texts)
                rows = zip(prompts, answer, kwargs.get("task_type") or [""] * n, kwargs.get("operation") or [""] * n,
                           kwargs.get("difficulty") or [""] * n, strict=True)  # fmt: skip
                answers = [task.extract(t, Problem(*row)) for t, row in zip(texts, rows, strict=True)]
                listener.on_samples(step, pick_samples(step, list(prompts), texts, total, config.num_generations,
                                                       SAMPLES_PER_STEP, config.scale_rewards, answers))  # fmt: skip
            return values

        reward.__name__ = name  # TRL names the logged metric after it: rewards/binary_reward/mean
        return reward

    return [wrap(i, fn, w, name) for i, (fn, w, name) in enumerate(terms)]


def _checked(name: str, values, n: int) -> list[float]:
    try:
        values = list(values)
    except TypeError:
        raise RewardError(f"the reward {name} returned a {type(values).__name__}, not a list of numbers") from None
    if len(values) != n:
        raise RewardError(f"the reward {name} returned {len(values)} values for {n} completions")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise RewardError(f"the reward {name} returned {v!r}; a reward is a finite number per completion")
    return [float(v) for v in values]


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


def build_trainer(config: RunConfig, model, tokenizer, train_dataset, output_dir: str,
                  listener: TrainingListener | None = None):  # fmt: skip
    """TRL's GRPOTrainer for a run: its GRPOConfig (grpo_args), its reward functions (the task's and --reward's,
    checked, sampling completions for ``listener``), and the callback that hands ``listener`` each step."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import GRPOTrainer

    listener = listener or TrainingListener()
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=sampling_rewards(config, listener),
        args=grpo_args(config, output_dir),
        train_dataset=train_dataset,
        processing_class=tokenizer,
        callbacks=[_metrics_callback(listener)],
    )
    # Metrics go to the listener; transformers would otherwise print every log dict.
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer


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
    import trl  # noqa: F401  imported before the clock starts, as a bare TRL script has it

    started = time.perf_counter()
    trainer = build_trainer(config, model, tokenizer, train_dataset, output_dir, listener)
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
