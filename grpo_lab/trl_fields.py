"""``--trl KEY=VALUE``: any field of TRL's GRPOConfig that grpo-lab has no flag for, checked against the installed
TRL's own dataclass (never a copied list): an unknown key gets the closest names, a value of the wrong type one
line, and a key grpo-lab sets itself the flag to use instead. Importing TRL takes seconds, so this module is
imported only when --trl is given.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import json
import types
import typing
from typing import Any

from .errors import ConfigError

# Keys of GRPOConfig that grpo-lab sets from its own flags (or must set itself): --trl refuses them with the flag.
OWNED = {
    "per_device_train_batch_size": "--batch_size (completions per optimizer step, over every process)",
    "gradient_accumulation_steps": "--batch_size (completions per optimizer step, over every process)",
    "generation_batch_size": "--batch_size (the generation batch follows it; --trl steps_per_generation=K "
    "generates K steps at once)",
    "num_generations": "--num_generations",
    "learning_rate": "--learning_rate",
    "temperature": "--temperature",
    "num_train_epochs": "--epochs",
    "max_steps": "--max_steps",
    "beta": "--beta",
    "max_completion_length": "--max_completion_length",
    "seed": "--seed",
    "data_seed": "--seed",
    "output_dir": "--output_dir",
    "run_name": "--exp_name",
    "report_to": "--wandb (grpo-lab reports to WandB itself)",
    "logging_steps": "nothing: grpo-lab records every step",
    "logging_strategy": "nothing: grpo-lab records every step",
    "save_strategy": "--save_steps",
    "save_steps": "--save_steps",
    "save_total_limit": "--save_total_limit",
    "use_vllm": "--use_vllm",
    "vllm_mode": "--use_vllm (colocate mode)",
    "use_cpu": "nothing: grpo-lab trains where accelerate puts the process",
    "loss_type": "--loss_type",
    "scale_rewards": "--scale_rewards",
    "importance_sampling_level": "--importance_sampling_level",
    "epsilon": "--epsilon",
    "epsilon_high": "--epsilon_high",
    "num_iterations": "--num_iterations",
    "mask_truncated_completions": "--mask_truncated_completions",
    "top_p": "--top_p",
    "top_k": "--top_k",
    "min_p": "--min_p",
    "repetition_penalty": "--repetition_penalty",
    "lr_scheduler_type": "--lr_scheduler_type",
    "warmup_steps": "--warmup",
    "warmup_ratio": "--warmup",
    "weight_decay": "--weight_decay",
    "max_grad_norm": "--max_grad_norm",
    "reward_weights": "--reward NAME*WEIGHT",
    "log_completions": "nothing: grpo-lab records sample completions itself",
    "num_completions_to_print": "nothing: grpo-lab records sample completions itself",
    "disable_tqdm": "nothing: grpo-lab shows its own progress",
    "remove_unused_columns": "nothing: grpo-lab's rewards need every column",
    "ddp_find_unused_parameters": "nothing: grpo-lab sets it for DDP",
    "do_eval": "nothing: grpo-lab evaluates before and after training itself",
    "eval_strategy": "nothing: grpo-lab evaluates before and after training itself",
    "push_to_hub": "nothing: grpo-lab saves the model to --output_dir",
    "resume_from_checkpoint": "grpo-lab resume ID",
}


def grpo_fields() -> dict[str, dataclasses.Field]:
    from trl import GRPOConfig

    return {f.name: f for f in dataclasses.fields(GRPOConfig) if f.init}


def check(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (KEY -> VALUE as typed, or as a sweep file gave it) as GRPOConfig takes them, or a one-line
    ConfigError naming what to do."""
    fields = grpo_fields()
    out = {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise ConfigError(f"--trl: the key {key!r} must be text")
        if key in OWNED:
            raise ConfigError(f"--trl {key}: grpo-lab sets it; use {OWNED[key]}")
        if key not in fields:
            import trl

            from .config import config_fields

            if key in {name for name, *_ in config_fields()}:
                raise ConfigError(f"--trl {key}: that is grpo-lab's own flag; use --{key}")
            close = difflib.get_close_matches(key, list(fields), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"--trl {key}: TRL {trl.__version__}'s GRPOConfig has no such field{hint}")
        out[key] = typed(key, value, fields[key].type)
    return out


def typed(key: str, value: Any, annotation: Any) -> Any:
    """``value`` (text as typed, or a TOML value) as the field's type takes it; text is read as JSON where the
    type is not text (numbers, true/false, null, lists, objects)."""
    allowed = _types(annotation)
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "[") and (dict in allowed or list in allowed):
        try:
            value = json.loads(value)  # an object or a list, where the field takes one (lr_scheduler_kwargs)
        except ValueError:
            raise ConfigError(f"--trl {key}={value[:60]}: not valid JSON") from None
    if isinstance(value, str) and not _takes_text(allowed):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(f"--trl {key}={value}: {_describe(allowed)} expected") from None
    if value is None and type(None) in allowed:
        return None
    if isinstance(value, bool):
        if bool in allowed:
            return value
    elif isinstance(value, int) and (int in allowed or float in allowed):
        return value
    elif isinstance(value, float) and float in allowed:
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"--trl {key}={value}: a finite number expected")
        return value
    elif isinstance(value, str) and _takes_text(allowed):
        literal = [a for a in allowed if isinstance(a, _Choices)]
        if literal and not any(value in c.values for c in literal) and str not in allowed:
            raise ConfigError(f"--trl {key}={value}: one of {', '.join(map(str, literal[0].values))} expected")
        return value
    elif (isinstance(value, list) and list in allowed) or (isinstance(value, dict) and dict in allowed):
        return value
    raise ConfigError(f"--trl {key}={json.dumps(value)[:60]}: {_describe(allowed)} expected")


class _Choices:
    def __init__(self, values):
        self.values = tuple(values)


def _types(annotation: Any) -> set:
    """The Python types a field's annotation admits (str for an Enum of text, _Choices for a Literal)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_types(a) for a in typing.get_args(annotation)))
    if origin is typing.Literal:
        return {_Choices(typing.get_args(annotation))}
    if origin is not None:
        return {origin}
    if annotation is type(None) or annotation is None:
        return {type(None)}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {str}
    if annotation is typing.Any:
        return {str, int, float, bool, list, dict, type(None)}
    return {annotation} if isinstance(annotation, type) else {str}


def _takes_text(allowed: set) -> bool:
    return str in allowed or any(isinstance(a, _Choices) for a in allowed)


def _describe(allowed: set) -> str:
    names = sorted({"text" if a is str else "choice" if isinstance(a, _Choices) else "null" if a is type(None)
                    else getattr(a, "__name__", str(a)) for a in allowed})  # fmt: skip
    return " or ".join(names)
