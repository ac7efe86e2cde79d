"""RunConfig: every flag of a training run, documented once.

The CLI options, the README's flag table and the recorded configuration all come from the
fields below. Field names are the seed script's snake_case flags. Cross-field checks live in
``__post_init__`` and raise ConfigError before anything heavy is imported.
"""

from __future__ import annotations

import os
import sys
from dataclasses import MISSING, asdict, dataclass, field, fields
from importlib import resources
from typing import Any

from . import tasks
from .errors import ConfigError
from .rewards import REWARDS
from .suites import NONE, SUITES, is_user_suite, load_suite, suite_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _field(default, help: str, choices: tuple[str, ...] | None = None, group: str = "Training"):
    kwargs: dict[str, Any] = {"default_factory": default} if callable(default) else {"default": default}
    return field(metadata={"help": help, "choices": choices, "group": group}, **kwargs)


@dataclass
class RunConfig:
    # Dataset (the seed's flags)
    dataset_type: str = _field(
        "arithmetic",
        "arithmetic: a op b with + - *; small_numbers: the same on 0-10; "
        "mixed: 50% arithmetic, 25% counting, 25% comparison.",
        tasks.DATASET_TYPES,
        "Dataset",
    )
    n_samples: int = _field(100, "Number of distinct training problems.", group="Dataset")
    min_num: int | None = _field(None, "Smallest operand (default 0; small_numbers fixes 0-10).", group="Dataset")
    max_num: int | None = _field(None, "Largest operand (default 20; small_numbers fixes 0-10).", group="Dataset")
    # Training (the seed's flags)
    batch_size: int = _field(
        256,
        "Completions per optimizer step (TRL counts completions): batch_size / num_generations prompts per step. "
        "Must be divisible by num_generations.",
    )
    num_generations: int = _field(16, "Completions sampled per prompt; GRPO needs 8-16 for reward variance.")
    learning_rate: float = _field(5e-6, "Peak learning rate (AdamW, 10% warmup).")
    temperature: float = _field(0.7, "Sampling temperature of the generations.")
    epochs: int = _field(50, "Passes over the training problems (ignored when max_steps is set).")
    beta: float = _field(0.1, "KL penalty coefficient; arithmetic collapses without it.")
    reward: str = _field("binary", "binary: +1 right, -1 wrong (the seed's). partial: graded credit.", tuple(REWARDS))
    max_completion_length: int = _field(16, "Most tokens generated per completion.")
    max_steps: int | None = _field(None, "Stop after this many optimizer steps (for quick checks).")
    # Other (the seed's flags)
    model_name: str = _field(
        "Qwen/Qwen2-0.5B-Instruct",
        "A built-in model (tiny-arith, smollm2-135m), a local checkpoint directory, or a hub id.",
        group="Other",
    )
    seed: int = _field(42, "Random seed: dataset, order, sampling and initialisation.", group="Other")
    exp_name: str | None = _field(
        None, "Experiment name (default grpo_{dataset_type}_b{batch_size}_g{num_generations}).", group="Other"
    )
    tags: list[str] = _field(
        lambda: ["grpo", "canonical"], "WandB tags (repeat the flag or separate with commas).", group="Other"
    )
    # grpo-lab's own
    eval_samples: int = _field(
        200, "Held-out problems (not in the training set) evaluated before and after.", group="Evaluation"
    )
    eval_batch_size: int = _field(
        256, "Prompts per batched greedy generate call during evaluation.", group="Evaluation"
    )
    eval_suite: str = _field(
        "arith-v1",
        "Suite evaluated before and after (mixed runs add mixed-v1): "
        f"{', '.join(SUITES)}, a .jsonl file of your own (its overlap with training is counted), or none.",
        group="Evaluation",
    )
    threads: int | None = _field(
        None,
        "Torch CPU threads (default: half the cores, at least 1; two processes each using every core "
        "ran 13x slower than one thread each).",
        group="Other",
    )
    output_dir: str | None = _field(
        None, "Where the trained model and tokenizer are saved (default runs/<run id>).", group="Other"
    )

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(message)

        if isinstance(self.tags, str):
            self.tags = split_tags([self.tags])
        for f in fields(self):
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            need(not choices or value in choices, f"--{f.name} {value!r} is not one of: {', '.join(choices or ())}")
        self.min_num, self.max_num = tasks.resolve_range(self.dataset_type, self.min_num, self.max_num)
        if is_user_suite(self.eval_suite):
            self.eval_suite = os.path.abspath(self.eval_suite)  # the recorded command reruns from anywhere
            suite_name(self.eval_suite)
            load_suite(self.eval_suite)  # a bad file fails here, before anything loads
        need(
            self.eval_suite in (*SUITES, NONE) or is_user_suite(self.eval_suite),
            f"--eval_suite {self.eval_suite!r} is not one of: {', '.join((*SUITES, NONE))}, nor a .jsonl file",
        )
        for name in ("n_samples", "batch_size", "epochs", "max_completion_length", "eval_batch_size"):
            need(getattr(self, name) >= 1, f"--{name} must be at least 1 (got {getattr(self, name)})")
        need(self.eval_samples >= 0, f"--eval_samples must be 0 or more (got {self.eval_samples})")
        need(self.num_generations >= 2, f"--num_generations must be at least 2 for GRPO (got {self.num_generations})")
        need(
            self.batch_size % self.num_generations == 0,
            f"--batch_size {self.batch_size} is not divisible by --num_generations {self.num_generations}; "
            f"try --batch_size {max(1, self.batch_size // self.num_generations) * self.num_generations}",
        )
        need(self.learning_rate >= 0, f"--learning_rate must be 0 or more (got {self.learning_rate})")
        need(self.temperature > 0, f"--temperature must be above 0 (got {self.temperature})")
        need(self.beta >= 0, f"--beta must be 0 or more (got {self.beta})")
        need(self.max_steps is None or self.max_steps >= 1, f"--max_steps must be at least 1 (got {self.max_steps})")
        need(self.threads is None or self.threads >= 1, f"--threads must be at least 1 (got {self.threads})")
        tasks.check_samples(self.dataset_type, self.n_samples, self.min_num, self.max_num)
        need(
            self.n_samples >= self.prompts_per_step,
            f"--n_samples {self.n_samples} is fewer than the {self.prompts_per_step} prompts one step takes "
            f"(batch_size {self.batch_size} / num_generations {self.num_generations}); "
            "raise --n_samples or lower --batch_size",
        )
        if self.exp_name is None:
            self.exp_name = f"grpo_{self.dataset_type}_b{self.batch_size}_g{self.num_generations}"
        if self.threads is None:
            self.threads = max(1, (os.cpu_count() or 2) // 2)

    # --- derived quantities ------------------------------------------------------------------------------------
    @property
    def eval_suites(self) -> list[str]:
        """The standard suites this run is evaluated on."""
        if self.eval_suite == NONE:
            return []
        extra = ["mixed-v1"] if self.dataset_type == "mixed" and self.eval_suite != "mixed-v1" else []
        return [self.eval_suite, *extra]

    def evaluated_sets(self) -> dict[str, list[str]]:
        """Every set this run is evaluated on (train, held_out, each suite by its recorded name) with the
        operations it holds: what its metrics, and so its --criteria, can name."""
        ops = tasks.operations(self.dataset_type)
        sets = {"train": ops, "held_out": ops} if self.eval_samples else {"train": ops}
        for suite in self.eval_suites:
            sets[suite_name(suite)] = sorted({p.operation for p in load_suite(suite)})
        return sets

    @property
    def prompts_per_step(self) -> int:
        return self.batch_size // self.num_generations

    @property
    def steps_per_epoch(self) -> int:
        return self.n_samples // self.prompts_per_step  # TRL drops the last, incomplete batch of prompts

    @property
    def total_steps(self) -> int:
        return self.max_steps if self.max_steps is not None else self.steps_per_epoch * self.epochs

    def plan(self) -> list[tuple[str, str]]:
        left_out = self.n_samples - self.steps_per_epoch * self.prompts_per_step
        epochs = self.total_steps / self.steps_per_epoch
        rows = [
            (
                "prompts per step",
                f"{self.prompts_per_step} ({self.batch_size} completions / {self.num_generations} generations)",
            ),
            ("steps per epoch", f"{self.steps_per_epoch} ({self.n_samples} problems // {self.prompts_per_step})"),
            (
                "total steps",
                f"{self.total_steps}" + (" (max_steps)" if self.max_steps is not None else f" ({self.epochs} epochs)"),
            ),
            ("epochs covered", f"{epochs:.2f}"),
            ("completions generated", f"{self.total_steps * self.batch_size:,}"),
        ]
        if left_out:
            rows.append(("left out per epoch", f"{left_out} problems (a different random few each epoch)"))
        return rows

    def warnings(self) -> list[str]:
        """The seed's learnings about settings that usually fail (not fatal)."""
        out = []
        if self.beta == 0:
            out.append("beta is 0: without a KL penalty arithmetic training collapses to garbage (the seed uses 0.1)")
        if self.num_generations < 8:
            out.append(
                f"num_generations is {self.num_generations}: with fewer than 8 the reward std within a group "
                "often goes to zero and there is nothing to learn from (the seed uses 16)"
            )
        if self.temperature < 0.5:
            out.append(
                f"temperature is {self.temperature}: below 0.5 the generations of a prompt tend to be identical, "
                "so every reward in the group is the same (the seed uses 0.7)"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def command_args(self) -> list[str]:
        """Flags that reproduce this configuration exactly (every field, defaults included)."""
        args: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            args += [f"--{f.name}", ",".join(value) if isinstance(value, list) else str(value)]
        return args


def config_fields():
    """(name, type, default, metadata) for every RunConfig field, in declaration order."""
    for f in fields(RunConfig):
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        yield f.name, f.type, default, f.metadata


def split_tags(values: list[str] | None) -> list[str]:
    return [t for v in values or [] for t in v.replace(",", " ").split() if t]


# --- presets -------------------------------------------------------------------------------------------------------


def load_presets() -> dict[str, dict[str, Any]]:
    text = resources.files("grpo_lab").joinpath("presets.toml").read_text()
    return tomllib.loads(text)


def preset_values(name: str) -> dict[str, Any]:
    presets = load_presets()
    if name not in presets:
        raise ConfigError(f"unknown preset {name!r}; `grpo-lab presets` lists them: {', '.join(presets)}")
    values = {k: v for k, v in presets[name].items() if k != "description"}
    known = {f.name for f in fields(RunConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"preset {name!r} sets unknown flags: {', '.join(unknown)}")
    return values


def resolve(explicit: dict[str, Any], preset: str | None = None) -> RunConfig:
    """A RunConfig from a preset (if any) overlaid with the flags the user gave explicitly."""
    values = preset_values(preset) if preset else {}
    values.update({k: v for k, v in explicit.items() if v is not None})
    return RunConfig(**values)
