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
from .rewards import REWARDS
from .suites import NONE, SUITES, is_user_suite, load_suite, suite_name
from .text import check_text

# The most a count may be: what torch, TRL and SQLite take as a 32-bit integer.
INT32_MAX = 2**31 - 1
OPERAND_MAX = 10**9  # so that every answer (a product of two operands) fits in 64 bits
MAX_THREADS = 1024
TAG_MAX = 64  # WandB refuses longer tags


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
    the field is written comma-separated (tags)."""
    args: list[str] = []
    for f in fields(config):
        value = getattr(config, f.name)
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag(f))  # a switch
        elif isinstance(value, list) and f.metadata.get("flags"):
            args += [a for v in value for a in (flag(f), str(v))]
        else:
            args += [flag(f), ",".join(value) if isinstance(value, list) else str(value)]
    return args


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
    learning_rate: float = _field(5e-6, "Peak learning rate (AdamW, 10% warmup).", bounds=(0, None))
    temperature: float = _field(0.7, "Sampling temperature of the generations.", bounds=(1e-4, 100))
    epochs: int = _field(
        50, "Passes over the training problems (ignored when max_steps is set).", bounds=(1, INT32_MAX)
    )
    beta: float = _field(0.1, "KL penalty coefficient; arithmetic collapses without it.", bounds=(0, None))
    reward: str = _field("binary", "binary: +1 right, -1 wrong (the seed's). partial: graded credit.", tuple(REWARDS))
    max_completion_length: int = _field(16, "Most tokens generated per completion.", bounds=(1, INT32_MAX))
    max_steps: int | None = _field(
        None, "Stop after this many optimizer steps (for quick checks).", bounds=(1, INT32_MAX)
    )
    # Other (the seed's flags)
    model_name: str = _field(
        "Qwen/Qwen2-0.5B-Instruct",
        "A built-in model (tiny-arith, smollm2-135m), a local checkpoint directory, or a hub id.",
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
        self.min_num, self.max_num = tasks.resolve_range(self.dataset_type, self.min_num, self.max_num)
        if is_user_suite(self.eval_suite):
            self.eval_suite = os.path.abspath(self.eval_suite)  # the recorded command reruns from anywhere
            suite_name(self.eval_suite)
            load_suite(self.eval_suite)  # a bad file fails here, before anything loads
        need(
            self.eval_suite in (*SUITES, NONE) or is_user_suite(self.eval_suite),
            f"--eval_suite {self.eval_suite!r} is not one of: {', '.join((*SUITES, NONE))}, nor a .jsonl file",
        )
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
            self.threads = default_threads()

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
        f"Suite to evaluate on, repeatable: {', '.join(SUITES)}, or a .jsonl file of your own.",
        group="Evaluation",
        flags=("--suite",),
    )
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
        resolved = []
        for name in self.suites:
            check_text("--suite", name, one_line=True)
            if is_user_suite(name):
                name = os.path.abspath(name)  # the recorded command reruns from anywhere
                suite_name(name)
            load_suite(name)  # an unknown name or a bad file fails here, before anything loads
            resolved.append(name)
        self.suites = resolved
        if self.threads is None:
            self.threads = default_threads()

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
        changed = {k: v for k, v in given.items() if k not in skip and v != bundle.get(k, defaults[k])}
        config.exp_name = default_name(base, changed)
    return config


# What a default name leaves out: the seed (replicates share a name), and what does not change the experiment:
# where and how often it is saved, on how many processes and threads it runs (`accelerate launch` gives the
# name `--num_processes` gives), how many prompts one evaluation call takes.
NAME_LEAVES_OUT = ("exp_name", "seed", "tags", "threads", "output_dir", "eval_batch_size", "save_steps",
                   "save_total_limit", "num_processes")  # fmt: skip
NAME_IN_BASE = ("dataset_type", "batch_size", "num_generations")  # grpo_{dataset_type}_b{batch}_g{generations}
NAME_SHORT = {"n_samples": "n", "min_num": "min", "max_num": "max", "batch_size": "b", "num_generations": "g",
              "learning_rate": "lr", "temperature": "t", "epochs": "ep", "beta": "beta",
              "max_completion_length": "len", "max_steps": "steps", "eval_samples": "eval"}  # fmt: skip


def default_name(base: str, changed: dict[str, Any]) -> str:
    """``base`` and each changed flag in declaration order, short:
    ``cpu_quick`` + {beta: 0, learning_rate: 1e-4} -> ``cpu_quick_lr0.0001_beta0``. Flags without a short name
    (dataset_type, reward, model_name, eval_suite) are named by their value."""
    parts = [base]
    for name, *_ in config_fields():
        if name in changed:
            value = changed[name]
            if isinstance(value, float):  # short (0.0001, 1e-05), but never two values under one name
                text = f"{value:g}" if float(f"{value:g}") == value else repr(value)
            elif name == "model_name":
                text = Path(value).name or value  # Qwen/Qwen2-0.5B-Instruct -> Qwen2-0.5B-Instruct
            elif name == "eval_suite":
                text = suite_name(value)
            else:
                text = str(value)
            parts.append(NAME_SHORT.get(name, "") + text)
    return "_".join(parts)
