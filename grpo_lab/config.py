"""RunConfig and EvalConfig: every flag of a training run and of an evaluation, documented once.

The CLI options, the README's flag table and the recorded configuration all come from the
fields below. Field names are the seed script's snake_case flags. Cross-field checks live in
``__post_init__`` and raise ConfigError before anything heavy is imported.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import MISSING, asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from . import paths, tasks
from .errors import ConfigError
from .suites import NONE, SUITES, V1, LoadedSuite, imported_name, open_suite, resolve_spec, suite_name
from .text import check_text

# The most a count may be: what torch, TRL and SQLite take as a 32-bit integer.
INT32_MAX = 2**31 - 1
OPERAND_MAX = 10**9  # so that every answer (a product of two operands) fits in 64 bits
MAX_THREADS = 1024
TAG_MAX = 64  # WandB refuses longer tags
# Every loss TRL 1.16's GRPOTrainer computes (tests/test_config.py checks this against TRL's own help text).
LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo")
# transformers' schedules that run in a GRPO run: the *_min_lr ones and warmup_stable_decay need their arguments
# (--trl lr_scheduler_kwargs=...); reduce_lr_on_plateau and greedy need an evaluation loop GRPO does not run.
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
              "inverse_sqrt", "cosine_with_min_lr", "cosine_warmup_with_min_lr", "warmup_stable_decay")  # fmt: skip
SCHEDULER_NEEDS = {"cosine_with_min_lr": ("min_lr", "min_lr_rate"),
                   "cosine_warmup_with_min_lr": ("min_lr", "min_lr_rate"),
                   "warmup_stable_decay": ("num_decay_steps",)}  # fmt: skip


def _field(default, help: str, choices: tuple[str, ...] | None = None, group: str = "Training",
           bounds: tuple[float | None, float | None] = (None, None), flags: tuple[str, ...] = (),
           required: bool = False):  # fmt: skip
    """A flag: its default, help, allowed values (choices or inclusive bounds) and help panel. ``flags`` names
    the options when they are not --FIELD (and --FIE-LD); a ``required`` flag has no default."""
    kwargs: dict[str, Any] = {"default_factory": default} if callable(default) else {"default": default}
    meta = {"help": help, "choices": choices, "group": group, "bounds": bounds, "flags": flags, "required": required}
    return field(metadata=meta, **kwargs)


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def default_threads(processes: int = 2) -> int:
    """The cores shared out between ``processes`` processes, at least 1 each (by default half: two processes each
    using every core ran 13x slower than one thread each)."""
    return max(1, (os.cpu_count() or 2) // max(1, processes))


def flag(f) -> str:
    """The option a field is given by on the command line (its first flag)."""
    return (f.metadata.get("flags") or (f"--{f.name}",))[0]


def _check_fields(config) -> None:
    """Each field of a config: one of its choices, or a number of the right kind within its bounds."""
    for f in fields(config):
        value = getattr(config, f.name)
        if value is None:
            continue
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"{flag(f)} {value!r} is not one of: {', '.join(choices)}")
        check_number(flag(f), value, str(f.type), f.metadata["bounds"])


def _command_args(config) -> list[str]:
    """Flags that reproduce a config exactly (every field, defaults included); a list repeats its flag unless
    the field is written comma-separated (tags); a dict (--trl) repeats its flag with KEY=VALUE, the value as
    JSON unless it is text."""
    args: list[str] = []
    for f in fields(config):
        value = getattr(config, f.name)
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag(f))  # a switch
        elif isinstance(value, dict):
            import json

            args += [
                a for k, v in value.items() for a in (flag(f), f"{k}={v if isinstance(v, str) else json.dumps(v)}")
            ]
        elif isinstance(value, list) and f.metadata.get("flags"):
            args += [a for v in value for a in (flag(f), str(v))]
        else:
            args += [flag(f), ",".join(value) if isinstance(value, list) else str(value)]
    return args


SUITE_FIELDS_HELP = (
    "The columns of your evaluation set that hold what grpo-lab did not find by name, FIELD=COLUMN separated by "
    "commas: fields prompt (found as prompt, question, input), answer (answer, target, output), task_type, "
    "operation, difficulty (found anywhere, also nested: metadata.operation); e.g. prompt=question,answer=target."
)


def check_suites(specs: list[str], fields: str | None) -> list[LoadedSuite]:
    """The suites a run or an evaluation names, each read and checked before anything loads (a bad set fails here),
    with distinct names; --suite_fields only where a set is read from a file, a folder or the hub."""
    if fields is not None:
        check_text("--suite_fields", fields, one_line=True)
        if not specs:
            raise ConfigError("--suite_fields maps the columns of an evaluation set, and this run evaluates on none; "
                              "leave it out")  # fmt: skip
        if not any(s not in SUITES and not imported_name(s) for s in specs):
            raise ConfigError(f"--suite_fields maps the columns of a set read from a file, a folder or the hub; "
                              f"{', '.join(specs)} {'is' if len(specs) == 1 else 'are'} built in or imported: leave "
                              "it out")  # fmt: skip
    loaded = [open_suite(spec, fields) for spec in specs]
    names = [s.name for s in loaded]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice:
        raise ConfigError(f"two suites would be recorded as {twice}; rename one, or import it under another name")
    return loaded


@dataclass
class RunConfig:
    # Dataset (the seed's flags)
    dataset_type: str = _field(
        "arithmetic",
        "arithmetic: a op b with + - *; small_numbers: the same on 0-10; "
        "mixed: 50% arithmetic, 25% counting, 25% comparison. Ignored with --task.",
        tasks.DATASET_TYPES,
        "Dataset",
    )
    task: str | None = _field(
        None,
        "Your own task instead of a built-in dataset: a .py file (its `task`), FILE.py:NAME, package.module:NAME, "
        "or a task an installed package offers (`grpo-lab tasks` lists them). Default: --dataset_type's.",
        group="Dataset",
    )
    n_samples: int = _field(100, "Number of distinct training problems.", group="Dataset", bounds=(1, INT32_MAX))
    min_num: int | None = _field(None, "Smallest operand (default 0; small_numbers fixes 0-10).", group="Dataset",
                                 bounds=(-OPERAND_MAX, OPERAND_MAX))  # fmt: skip
    max_num: int | None = _field(None, "Largest operand (default 20; small_numbers fixes 0-10).", group="Dataset",
                                 bounds=(-OPERAND_MAX, OPERAND_MAX))  # fmt: skip
    # Training (the seed's flags)
    batch_size: int = _field(
        256,
        "Completions per optimizer step (TRL counts completions): batch_size / num_generations prompts per step. "
        "Must be divisible by num_generations.",
        bounds=(1, INT32_MAX),
    )
    num_generations: int = _field(
        16, "Completions sampled per prompt; GRPO needs 8-16 for reward variance.", bounds=(2, INT32_MAX)
    )
    learning_rate: float = _field(5e-6, "Peak learning rate (AdamW; see --warmup and --lr_scheduler_type).",
                                  bounds=(0, None))  # fmt: skip
    temperature: float = _field(0.7, "Sampling temperature of the generations.", bounds=(1e-4, 100))
    epochs: int = _field(
        50, "Passes over the training problems (ignored when max_steps is set).", bounds=(1, INT32_MAX)
    )
    beta: float = _field(0.1, "KL penalty coefficient; arithmetic collapses without it.", bounds=(0, None))
    reward: str | None = _field(
        None,
        "The reward, or several joined by + with weights (*W): binary (+1 right, -1 wrong; the seed's), partial "
        "(graded credit), task (a --task's own), module:function or FILE.py:function (TRL's reward signature), "
        "e.g. 'binary+my_rewards:brevity*0.1'. Default: binary, or the --task's own.",
    )
    max_completion_length: int = _field(16, "Most tokens generated per completion.", bounds=(1, INT32_MAX))
    max_steps: int | None = _field(
        None, "Stop after this many optimizer steps (for quick checks).", bounds=(1, INT32_MAX)
    )
    # GRPO: the settings of TRL's GRPOConfig researchers vary; the defaults are what the seed script ran
    loss_type: str = _field(
        "grpo",
        "How token losses are averaged (TRL's loss_type): grpo (per sequence, then over the batch: the seed's), "
        "dr_grpo (Dr. GRPO), dapo (over all tokens; TRL's own default), bnpo, cispo, sapo, luspo, vespo.",
        LOSS_TYPES, "GRPO",
    )  # fmt: skip
    scale_rewards: str = _field(
        "group", "Divide advantages by the reward std of the group (the seed's), of the batch, or none (Dr. GRPO).",
        ("group", "batch", "none"), "GRPO",
    )  # fmt: skip
    importance_sampling_level: str = _field(
        "token", "Importance ratios per token (GRPO) or per sequence (GSPO: use with --loss_type grpo).",
        ("token", "sequence"), "GRPO",
    )  # fmt: skip
    epsilon: float = _field(0.2, "Clip the importance ratio to [1 - epsilon, 1 + epsilon_high].", group="GRPO",
                            bounds=(0, 1))  # fmt: skip
    epsilon_high: float | None = _field(
        None, "Upper clip (DAPO's clip-higher: 0.28; with cispo the ratio cap, e.g. 5). Default: epsilon.",
        group="GRPO", bounds=(0, 100),
    )  # fmt: skip
    num_iterations: int = _field(
        1, "Optimisation passes over each generated batch (mu); above 1 the ratio and its clipping take effect.",
        group="GRPO", bounds=(1, 1000),
    )  # fmt: skip
    mask_truncated_completions: bool = _field(
        False, "Leave completions cut off at max_completion_length out of the loss (DAPO).", group="GRPO"
    )
    top_p: float = _field(1.0, "Sample from the smallest set of tokens holding this much probability (1: all).",
                          group="GRPO", bounds=(0, 1))  # fmt: skip
    top_k: int = _field(0, "Sample from the k most likely tokens (0: all).", group="GRPO", bounds=(0, INT32_MAX))
    min_p: float | None = _field(
        None, "Drop tokens less likely than min_p times the most likely one (e.g. 0.05). Default: off.",
        group="GRPO", bounds=(0, 1),
    )  # fmt: skip
    repetition_penalty: float = _field(1.0, "Above 1 discourages tokens already in the prompt or completion.",
                                       group="GRPO", bounds=(0, 100))  # fmt: skip
    lr_scheduler_type: str = _field(
        "linear", "How the learning rate falls after warmup (transformers' schedules).", SCHEDULERS, "GRPO"
    )
    warmup: float = _field(
        0.1, "Learning-rate warmup: a fraction of the steps below 1 (the seed's 10%), or a whole number of steps.",
        group="GRPO", bounds=(0, INT32_MAX),
    )  # fmt: skip
    weight_decay: float = _field(0.01, "AdamW weight decay (the seed's 0.01).", group="GRPO", bounds=(0, 10))
    max_grad_norm: float = _field(1.0, "Clip the gradient norm to this (0: no clipping).", group="GRPO",
                                  bounds=(0, None))  # fmt: skip
    trl: dict[str, Any] = _field(
        dict,
        "Any other field of TRL's GRPOConfig, KEY=VALUE (repeatable), checked against the installed TRL: "
        "e.g. --trl delta=1.5 --trl top_entropy_quantile=0.2.",
        group="GRPO", flags=("--trl",),
    )  # fmt: skip
    # Other (the seed's flags)
    model_name: str = _field(
        "Qwen/Qwen2-0.5B-Instruct",
        "A built-in model (tiny-arith, tiny-arith-2, smollm2-135m), a local checkpoint directory, or a hub id.",
        group="Other",
    )
    seed: int = _field(
        42, "Random seed: dataset, order, sampling and initialisation.", group="Other", bounds=(0, 2**32 - 1)
    )
    exp_name: str | None = _field(
        None,
        "Experiment name (default: the preset's, or grpo_<dataset>_b<batch>_g<generations>, followed by the other "
        "flags you set, e.g. cpu_quick_lr0.0001_beta0; not the seed, so replicates share a name).",
        group="Other",
    )
    tags: list[str] = _field(
        lambda: ["grpo", "canonical"], "WandB tags (repeat the flag or separate with commas).", group="Other"
    )
    # grpo-lab's own
    eval_samples: int = _field(
        200, "Held-out problems (not in the training set) evaluated before and after.", group="Evaluation",
        bounds=(0, INT32_MAX),
    )  # fmt: skip
    eval_batch_size: int = _field(
        256, "Prompts per batched greedy generate call during evaluation.", group="Evaluation", bounds=(1, INT32_MAX)
    )
    eval_suite: str | None = _field(
        None,
        "Suite evaluated before and after (mixed runs add mixed-v1, or mixed-v2 where --reserve holds it out): "
        f"{', '.join(SUITES)}, one `grpo-lab suites import` froze (by its name), an evaluation set of your own (a "
        "datasets save_to_disk folder, a .jsonl, .json, .csv or .parquet file, a hub id user/name[:split]; its "
        "repeated prompts count as rows, its overlap with training is counted), or none. "
        "Default: arith-v1, or a --task's own suite (held out of its training problems by construction).",
        group="Evaluation",
    )
    suite_fields: str | None = _field(None, SUITE_FIELDS_HELP, group="Evaluation")
    reserve: list[str] = _field(
        lambda: list(V1),
        "Built-in suites no training set or held-out split may contain (held out by construction; tiny-arith's "
        "bootstrap text left out the v1 suites). Repeat or separate with commas.",
        group="Evaluation",
    )
    threads: int | None = _field(
        None,
        "Torch CPU threads (default: half the cores, at least 1; two processes each using every core "
        "ran 13x slower than one thread each).",
        group="Other",
        bounds=(1, MAX_THREADS),
    )
    output_dir: str | None = _field(
        None,
        "Where the trained model and tokenizer are saved: a new or empty folder (default runs/<run id>).",
        group="Other",
    )
    # Scaling up
    num_processes: int | None = _field(
        None,
        "Processes to train on, one per GPU: DDP through accelerate's launcher (gloo between CPU processes on a "
        "machine without GPUs). Default: 1, or as many as `accelerate launch` started.",
        group="Scaling",
    )
    save_steps: int | None = _field(
        None,
        "Keep a checkpoint (model, optimizer, scheduler, RNG) every N steps under the run's output folder, so "
        "`grpo-lab resume ID` can continue the run after a crash or Ctrl-C. Default: none.",
        group="Scaling",
    )
    save_total_limit: int = _field(2, "How many of the newest checkpoints to keep.", group="Scaling")
    use_vllm: bool = _field(
        False,
        "Generate completions with vLLM on the training GPU (TRL's colocate mode). Needs a CUDA GPU and vLLM "
        "installed (pip install vllm); grpo-lab does not depend on it.",
        group="Scaling",
    )

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(message)

        if isinstance(self.tags, str):
            self.tags = split_tags([self.tags])
        _check_fields(self)
        for name in ("model_name", "exp_name", "eval_suite", "output_dir"):
            if getattr(self, name) is not None:
                check_text(f"--{name}", getattr(self, name), one_line=True)
        need(bool(self.model_name.strip()), "--model_name is empty; give a built-in model (`grpo-lab models`), a "
                                            "checkpoint folder or a hub id")  # fmt: skip
        need(self.exp_name is None or bool(self.exp_name.strip()), "--exp_name is empty; give a name or leave it out")
        for tag in self.tags:
            check_text("--tags", tag, one_line=True)
            need(len(tag) <= TAG_MAX, f"--tags: {tag[:20]!r}... has {len(tag)} characters; WandB takes {TAG_MAX}")
        if self.output_dir is not None:
            check_output_dir(self.output_dir)
        self._check_task()
        self._check_grpo()
        if self.eval_suite is None:
            self.eval_suite = "arith-v1" if self.task is None else (_task_suite(self._task, self.task) or NONE)
        need(bool(self.eval_suite.strip()), "--eval_suite is empty; give a suite, or none")
        self.eval_suite = resolve_spec(self.eval_suite)  # a path made absolute: the recorded command reruns anywhere
        check_suites(self.eval_suites, self.suite_fields)
        need(
            self.batch_size % self.num_generations == 0,
            f"--batch_size {self.batch_size} is not divisible by --num_generations {self.num_generations}; "
            f"try --batch_size {max(1, self.batch_size // self.num_generations) * self.num_generations}",
        )
        need(self.save_steps is None or self.save_steps >= 1, f"--save_steps must be at least 1 ({self.save_steps})")
        need(self.save_total_limit >= 1, f"--save_total_limit must be at least 1 (got {self.save_total_limit})")
        need(
            self.num_processes is None or self.num_processes >= 1,
            f"--num_processes must be at least 1 (got {self.num_processes})",
        )
        need(
            not self.use_vllm or _installed("vllm"),
            "--use_vllm needs vLLM, which is not installed here: pip install vllm (on a CUDA machine; "
            "grpo-lab does not depend on it)",
        )
        if self.task is None:
            tasks.check_samples(self.dataset_type, self.n_samples, self.min_num, self.max_num, self.reserve)
        need(
            self.n_samples >= self.prompts_per_step,
            f"--n_samples {self.n_samples} is fewer than the {self.prompts_per_step} prompts one step takes "
            f"(batch_size {self.batch_size} / num_generations {self.num_generations}); "
            "raise --n_samples or lower --batch_size",
        )
        if self.task is not None:
            self.problem_sets()  # a task that cannot give its problems is refused now, before anything is written
        if self.exp_name is None:
            self.exp_name = f"grpo_{self.task_name}_b{self.batch_size}_g{self.num_generations}"
        if self.threads is None:
            self.threads = default_threads()

    # --- the task, its rewards and the GRPO settings --------------------------------------------------------------
    def _check_task(self) -> None:
        from .tasks import loading

        if self.task is not None:
            check_text("--task", self.task, one_line=True)
            if not self.task.strip():
                raise ConfigError("--task is empty; give a task file, module:NAME or an installed task's name")
        if self.task in loading.BUILTIN:  # --task arithmetic is --dataset_type arithmetic
            if self.dataset_type not in ("arithmetic", self.task):
                raise ConfigError(f"--task {self.task} and --dataset_type {self.dataset_type} disagree; give one")
            self.dataset_type, self.task = self.task, None
        if isinstance(self.reserve, str):
            self.reserve = split_tags([self.reserve])
        self.reserve = list(dict.fromkeys(self.reserve))
        unknown = [name for name in self.reserve if name not in SUITES]
        if unknown:
            raise ConfigError(f"--reserve {unknown[0]!r} is not a built-in suite; one of: {', '.join(SUITES)}")
        if self.task is None:
            self.min_num, self.max_num = tasks.resolve_range(self.dataset_type, self.min_num, self.max_num)
            self.reward = self.reward if self.reward is not None else "binary"
        else:
            if self.min_num is not None or self.max_num is not None:
                raise ConfigError("--min_num and --max_num are the built-in arithmetic's; a --task draws its own")
            if self.task.endswith(".py") or ".py:" in self.task:
                path, sep, attr = self.task.rpartition(".py:") if ".py:" in self.task else (self.task[:-3], "", "")
                self.task = os.path.abspath(path + ".py") + (f":{attr}" if sep else "")  # reruns from anywhere
            self._task, self._task_info = loading.load(self.task)
            self.reward = self.reward if self.reward is not None else "task"
        from .rewards import parse_spec

        parse_spec(self.reward, builtin_task=self.task is None)  # an unknown reward or a bad file fails here

    def _check_grpo(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(message)

        need(self.top_p > 0, f"--top_p must be above 0 (got {self.top_p}); 1 samples from every token")
        need(self.repetition_penalty > 0, f"--repetition_penalty must be above 0 (got {self.repetition_penalty})")
        need(
            self.warmup < 1 or float(self.warmup).is_integer(),
            f"--warmup {self.warmup}: give a fraction of the steps below 1 (0.1) or a whole number of steps (10)",
        )
        if isinstance(self.trl, list):  # --trl KEY=VALUE, as typed
            self.trl = parse_trl_options(self.trl)
        if self.trl:
            from .trl_fields import check

            self.trl = check(self.trl)
        needs = SCHEDULER_NEEDS.get(self.lr_scheduler_type)
        if needs:
            given = self.trl.get("lr_scheduler_kwargs") or {}
            need(isinstance(given, dict) and any(k in given for k in needs),
                 f"--lr_scheduler_type {self.lr_scheduler_type} needs {' or '.join(needs)}: add --trl "
                 f"'lr_scheduler_kwargs={{\"{needs[0]}\": ...}}'")  # fmt: skip

    @property
    def task_name(self) -> str:
        return self._task_info.name if self.task is not None else self.dataset_type

    def task_object(self):
        """The task this run trains on: the --task's, or the built-in one --dataset_type names."""
        if self.task is None:
            return tasks.Arithmetic(self.dataset_type, self.min_num, self.max_num, self.reserve)
        return self._task

    def task_info(self):
        """What the run records about its task: name, version, source file and its SHA-256."""
        from .tasks.loading import builtin_info

        return builtin_info(self.dataset_type) if self.task is None else self._task_info

    def held_out_prompts(self) -> frozenset[str]:
        """The prompts a user task's training set and held-out split never hold: its suites' (held out by
        construction). The built-in tasks hold out the suites --reserve names."""
        if self.task is None:
            return frozenset()
        return frozenset(p.prompt for suite in self.loaded_suites() for p in suite.problems)

    def problem_sets(self) -> tuple[list, list]:
        """The run's training problems and its held-out problems of the same kind (none in training, none in a
        held-out suite), drawn once per configuration."""
        cached = getattr(self, "_problems", None)
        key = (self.task, self.dataset_type, self.n_samples, self.eval_samples, self.seed, self.min_num,
               self.max_num, tuple(self.reserve), self.eval_suite)  # fmt: skip
        if cached is not None and cached[0] == key:
            return cached[1]
        task, exclude = self.task_object(), self.held_out_prompts()
        train = task.problems(self.n_samples, self.seed, exclude)
        if self.task is not None:
            _check_drawn(self._task_info.name, train, exclude, self.n_samples)
        held_out = task.held_out(self.eval_samples, self.seed, [*train, *exclude]) if self.eval_samples else []
        self._problems = (key, (train, held_out))
        return train, held_out

    # --- derived quantities ------------------------------------------------------------------------------------
    @property
    def eval_suites(self) -> list[str]:
        """The standard suites this run is evaluated on."""
        if self.eval_suite == NONE:
            return []
        mixed = self.task is None and self.dataset_type == "mixed"
        counting = "mixed-v2" if "mixed-v2" in self.reserve else "mixed-v1"  # the mixed suite its training holds out
        extra = [counting] if mixed and self.eval_suite != counting else []
        return [self.eval_suite, *extra]

    def evaluated_sets(self) -> dict[str, list[str]]:
        """Every set this run is evaluated on (train, held_out, each suite by its recorded name) with the
        operations it holds: what its metrics, and so its --criteria, can name."""
        if self.task is None:
            ops = tasks.operations(self.dataset_type)
        else:
            ops = sorted({p.operation for problems in self.problem_sets() for p in problems if p.operation})
        sets = {"train": ops, "held_out": ops} if self.eval_samples else {"train": ops}
        for suite in self.loaded_suites():
            sets[suite.name] = sorted({p.operation for p in suite.problems if p.operation})
        return sets

    def loaded_suites(self) -> list[LoadedSuite]:
        """The suites this run is evaluated on, read (once per process while their files stay as they were)."""
        return [open_suite(spec, self.suite_fields) for spec in self.eval_suites]

    @property
    def prompts_per_step(self) -> int:
        return self.batch_size // self.num_generations

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps per pass over the problems: TRL drops the last, incomplete batch of prompts, and takes
        num_iterations steps on each generated batch."""
        return self.n_samples // self.prompts_per_step * self.num_iterations

    @property
    def total_steps(self) -> int:
        return self.max_steps if self.max_steps is not None else self.steps_per_epoch * self.epochs

    def plan(self) -> list[tuple[str, str]]:
        batches = self.n_samples // self.prompts_per_step
        left_out = self.n_samples - batches * self.prompts_per_step
        epochs = self.total_steps / self.steps_per_epoch
        passes = f" x {self.num_iterations} passes" if self.num_iterations > 1 else ""
        rows = [
            (
                "prompts per step",
                f"{self.prompts_per_step} ({self.batch_size} completions / {self.num_generations} generations)",
            ),
            (
                "steps per epoch",
                f"{self.steps_per_epoch} ({self.n_samples} problems // {self.prompts_per_step}{passes})",
            ),  # fmt: skip
            (
                "total steps",
                f"{self.total_steps}" + (" (max_steps)" if self.max_steps is not None else f" ({self.epochs} epochs)"),
            ),
            ("epochs covered", f"{epochs:.2f}"),
            ("completions generated", f"{self.total_steps * self.batch_size // self.num_iterations:,}"),
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

    def differs_from_seed(self) -> bool:
        """Whether a GRPO setting is not the seed's (then TRL itself is asked, before the run, whether it takes
        them: training.check_with_trl)."""
        return bool(self.trl) or any(getattr(self, name) != default for name, default in SEED_GRPO.items())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """A recorded configuration (a resumed run's, a sweep's queued run's); keys this version lacks are dropped."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        output_dir = values.pop("output_dir", None)
        config = cls(**values)
        config.output_dir = output_dir  # the run's own folder, checked when it started: it holds its checkpoints
        return config

    def command_args(self) -> list[str]:
        """Flags that reproduce this configuration exactly (every field, defaults included)."""
        return _command_args(self)


# The GRPO settings as the seed ran them, and so as every run recorded before these flags existed was trained.
SEED_GRPO = {"loss_type": "grpo", "scale_rewards": "group", "importance_sampling_level": "token", "epsilon": 0.2,
             "epsilon_high": None, "num_iterations": 1, "mask_truncated_completions": False, "top_p": 1.0, "top_k": 0,
             "min_p": None, "repetition_penalty": 1.0, "lr_scheduler_type": "linear", "warmup": 0.1,
             "weight_decay": 0.01, "max_grad_norm": 1.0}  # fmt: skip


def _task_suite(task, spec: str) -> str | None:
    """A task's own suite (its ``suite`` attribute: a .jsonl path, relative to the task's file), as a path."""
    suite = getattr(task, "suite", None)
    if not suite:
        return None
    if not isinstance(suite, str) or not suite.endswith(".jsonl"):
        raise ConfigError(f"--task {spec}: its suite {suite!r} must be the path of a .jsonl file")
    module_file = getattr(sys.modules.get(type(task).__module__), "__file__", None)
    folder = Path(module_file).parent if module_file else Path()
    return str((folder / suite).absolute())


def parse_trl_options(values: list[str]) -> dict[str, str]:
    """``--trl KEY=VALUE`` options as typed (values still text: trl_fields.check types them by TRL's dataclass)."""
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--trl {item!r}: write KEY=VALUE, e.g. --trl delta=1.5")
        if key in out:
            raise ConfigError(f"--trl {key} is given twice; give it once")
        out[key] = value
    return out


def _check_drawn(name: str, train: list, exclude: frozenset[str], n: int) -> None:
    """A task's own problems() is trusted with nothing: n problems, distinct prompts, none in a held-out suite."""
    from .tasks.base import checked

    for problem in train:
        checked(name, problem)
    prompts = [p.prompt for p in train]
    if len(prompts) != n:
        raise ConfigError(f"task {name} gave {len(prompts)} problems for --n_samples {n}")
    if len(set(prompts)) != len(prompts):
        raise ConfigError(f"task {name} repeats a prompt in its training problems; a training set holds each once")
    leaked = [p for p in prompts if p in exclude]
    if leaked:
        raise ConfigError(
            f"task {name} put {len(leaked)} problems of its evaluation suite into its training set "
            f"(e.g. {leaked[0][:50]!r}); a task must draw outside the prompts it is asked to exclude"
        )


THREADS_HELP = "Torch CPU threads (default: half the cores, at least 1)."


@dataclass
class EvalConfig:
    """Every flag of ``grpo-lab eval``: a model evaluated greedily on suites, recorded as an evaluation-only run.
    Field names are the keys its configuration is recorded under (``eval_batch_size`` as in a training run's, so
    the two line up in compare)."""

    model_name: str | None = _field(
        None, "A built-in model, a local checkpoint folder, a hub id, or run:RUN_ID (a run's trained model).",
        group="Evaluation", required=True,
    )  # fmt: skip
    suites: list[str] = _field(
        lambda: ["arith-v1"],
        f"Suite to evaluate on, repeatable: {', '.join(SUITES)}, one `grpo-lab suites import` froze (by its name), "
        "or an evaluation set of your own: a datasets save_to_disk folder, a .jsonl, .json, .csv or .parquet file, "
        "a hub id user/name[:split] (repeated prompts count as rows, as the set has them).",
        group="Evaluation",
        flags=("--suite",),
    )
    suite_fields: str | None = _field(None, SUITE_FIELDS_HELP, group="Evaluation")
    eval_batch_size: int = _field(
        256, "Prompts per batched greedy generate call.", group="Evaluation", bounds=(1, INT32_MAX),
        flags=("--batch_size", "--batch-size"),
    )  # fmt: skip
    max_new_tokens: int = _field(16, "Most tokens generated per answer.", group="Evaluation", bounds=(1, INT32_MAX))
    threads: int | None = _field(None, THREADS_HELP, group="Evaluation", bounds=(1, MAX_THREADS))

    def __post_init__(self) -> None:
        if isinstance(self.suites, str):
            self.suites = [self.suites]
        _check_fields(self)
        if self.model_name is None or not check_text("--model_name", self.model_name, one_line=True).strip():
            raise ConfigError("--model_name is empty; give a built-in model (`grpo-lab models`), a checkpoint "
                              "folder, a hub id or run:RUN_ID")  # fmt: skip
        if not self.suites:
            raise ConfigError("--suite: give at least one suite, e.g. --suite arith-v1")
        for name in self.suites:
            check_text("--suite", name, one_line=True)
            if not name.strip():
                raise ConfigError("--suite is empty; give a suite, e.g. --suite arith-v1")
        self.suites = [resolve_spec(name) for name in self.suites]  # paths absolute: the command reruns anywhere
        check_suites(self.suites, self.suite_fields)  # an unknown name or a bad set fails here, before anything loads
        if self.threads is None:
            self.threads = default_threads()

    def loaded_suites(self) -> list[LoadedSuite]:
        return [open_suite(spec, self.suite_fields) for spec in self.suites]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def command_args(self) -> list[str]:
        """``eval`` and the flags that reproduce this evaluation exactly."""
        return ["eval", *_command_args(self)]


def config_fields(cls: type = RunConfig):
    """(name, type, default, metadata) for every field of ``cls`` (RunConfig or EvalConfig), in declaration order."""
    for f in fields(cls):
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        yield f.name, f.type, default, f.metadata


def check_number(option: str, value: Any, type_text: str, bounds: tuple[float | None, float | None]) -> None:
    """A numeric flag's value: the right kind of number, finite, within its inclusive bounds."""
    if type_text == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{option} is a switch: true or false (got {value!r})")
        return
    if "int" in type_text:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{option} must be a whole number (got {value!r})")
    elif "float" in type_text:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{option} must be a number (got {value!r})")
        if not math.isfinite(value):
            raise ConfigError(f"{option} must be a finite number (got {value})")
    else:
        if type_text.startswith("str") and not isinstance(value, str):
            raise ConfigError(f"{option} must be text (got {value!r})")
        return
    low, high = bounds
    if low is not None and value < low:
        raise ConfigError(f"{option} must be at least {_bound(low)} (got {_given(value)})")
    if high is not None and value > high:
        raise ConfigError(f"{option} must be at most {_bound(high)} (got {_given(value)})")


def _given(value: float) -> str:
    """A number as a message quotes it: a whole number of thousands of digits (Python refuses to print one over
    4,300) by its size."""
    if isinstance(value, int) and abs(value) > 10**30:
        return f"a {'-' if value < 0 else ''}number of about {int(math.log10(abs(value))) + 1} digits"
    return str(value)


def _bound(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def check_output_dir(path: str) -> None:
    """--output_dir must be a new or empty folder this process can create: a previous run's model is never
    overwritten, and an impossible place fails before anything runs."""
    if not path.strip():
        raise ConfigError("--output_dir is empty; give a folder for the trained model or leave it out")
    target = Path(path).expanduser()
    try:
        target.stat()
    except (FileNotFoundError, NotADirectoryError):
        pass  # a new folder; its parents are checked below
    except (OSError, ValueError) as exc:  # a name too long, a folder one may not enter
        raise ConfigError(f"--output_dir {path[:80]}: {getattr(exc, 'strerror', None) or exc}") from None
    else:
        if not target.is_dir():
            raise ConfigError(f"--output_dir {path} is a file; give a folder for the trained model")
        if any(target.iterdir()):
            raise ConfigError(f"--output_dir {path} already holds files (a model?); give a new or empty folder")
    parent = next(p for p in target.absolute().parents if paths.exists(p))
    if not paths.is_dir(parent):
        raise ConfigError(f"--output_dir {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--output_dir {path}: cannot write in {parent}; choose a folder you can write to")


def split_tags(values: list[str] | None) -> list[str]:
    return [t for v in values or [] for t in v.replace(",", " ").split() if t]


# --- presets -------------------------------------------------------------------------------------------------------


def load_presets() -> dict[str, dict[str, Any]]:
    text = resources.files("grpo_lab").joinpath("presets.toml").read_text()
    if sys.version_info >= (3, 11):  # imported here: commands that read no preset start faster
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
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
    """A RunConfig from a preset (if any) overlaid with the flags the user gave explicitly. Without --exp_name
    the run is named after the preset (or its dataset and batch) and the flags that changed it."""
    bundle = preset_values(preset) if preset is not None else {}
    given = {k: v for k, v in explicit.items() if v is not None}
    config = RunConfig(**{**bundle, **given})
    if "exp_name" not in given:
        base = (bundle.get("exp_name") or preset.replace("-", "_")) if preset is not None else config.exp_name
        skip = NAME_LEAVES_OUT + (() if preset is not None else NAME_IN_BASE)
        defaults = {name: default for name, _, default, _ in config_fields()}
        defaults["reward"] = "binary" if config.task is None else "task"  # what no --reward resolves to
        changed = {k: getattr(config, k) for k in given
                   if k not in skip and getattr(config, k) != bundle.get(k, defaults[k])}  # fmt: skip
        if "task" in changed:
            changed["task"] = config.task_name
        config.exp_name = default_name(base, changed)
    return config


# What a default name leaves out: the seed (replicates share a name), and what does not change the experiment:
# where and how often it is saved, on how many processes and threads it runs (`accelerate launch` gives the
# name `--num_processes` gives), how many prompts one evaluation call takes, whether vLLM generates.
NAME_LEAVES_OUT = ("exp_name", "seed", "tags", "threads", "output_dir", "eval_batch_size", "num_processes",
                   "save_steps", "save_total_limit", "use_vllm")  # fmt: skip
NAME_IN_BASE = ("dataset_type", "task", "batch_size", "num_generations")  # grpo_{task}_b{batch}_g{generations}
NAME_SHORT = {"n_samples": "n", "min_num": "min", "max_num": "max", "batch_size": "b", "num_generations": "g",
              "learning_rate": "lr", "temperature": "t", "epochs": "ep", "beta": "beta",
              "max_completion_length": "len", "max_steps": "steps", "eval_samples": "eval", "scale_rewards": "scale",
              "importance_sampling_level": "is", "epsilon": "eps", "epsilon_high": "epsh", "num_iterations": "mu",
              "mask_truncated_completions": "masktrunc", "top_p": "topp", "top_k": "topk", "min_p": "minp",
              "repetition_penalty": "rep", "warmup": "warm", "weight_decay": "wd", "max_grad_norm": "clip",
              "reserve": "reserve-"}  # fmt: skip


def _name_value(value: Any) -> str:
    if isinstance(value, float):  # short (0.0001, 1e-05), but never two values under one name
        return f"{value:g}" if float(f"{value:g}") == value else repr(value)
    return str(value).replace(" ", "")


def default_name(base: str, changed: dict[str, Any]) -> str:
    """``base`` and each changed flag in declaration order, short:
    ``cpu_quick`` + {beta: 0, learning_rate: 1e-4} -> ``cpu_quick_lr0.0001_beta0``. Flags without a short name
    (dataset_type, reward, model_name, eval_suite) are named by their value."""
    parts = [base]
    for name, *_ in config_fields():
        if name in changed:
            value = changed[name]
            if value is True:  # a switch: its short name alone (masktrunc)
                text = ""
            elif isinstance(value, float):  # short (0.0001, 1e-05), but never two values under one name
                text = _name_value(value)
            elif isinstance(value, dict):  # --trl: each field and value (delta1.5)
                text = "_".join(f"{k}{_name_value(v)}" for k, v in value.items())
            elif isinstance(value, list):
                text = "-".join(map(str, value))
            elif name == "model_name":
                text = Path(value).name or value  # Qwen/Qwen2-0.5B-Instruct -> Qwen2-0.5B-Instruct
            elif name == "eval_suite":
                text = suite_name(value)
            else:
                text = str(value)
            parts.append(NAME_SHORT.get(name, "") + text)
    return "_".join(parts)
