"""Answer extraction and reward functions (pure functions, no torch).

GRPOTrainer calls a reward function with the batch's completions and, as keyword arguments, every
other dataset column for the same rows: ``answer[i]`` and ``task_type[i]`` belong to
``completions[i]``. So no prompt-to-answer lookup or batch-index bookkeeping is needed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

_LEADING_INT = re.compile(r"-?\d+")
_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def extract_answer(completion: str, task_type: str = "arithmetic") -> str | None:
    """The answer a completion gives, normalised, or None when it gives none.

    Numeric tasks: the integer at the start of the stripped completion (``-0`` -> ``0``,
    ``12abc`` -> ``12``), else the first whitespace-separated token. Comparison: the first
    ``yes`` or ``no`` as a word, lower-cased.
    """
    text = completion.strip()
    if task_type == "comparison":
        m = _YES_NO.search(text)
        return m.group(1).lower() if m else None
    m = _LEADING_INT.match(text)
    if m:
        return str(int(m.group()))
    tokens = text.split()
    return tokens[0] if tokens else None


def answer_complete(text: str, task_type: str = "arithmetic") -> bool:
    """True once no continuation of ``text`` can change what ``extract_answer`` returns.

    Evaluation stops generating a row as soon as this holds, so it must never fire early:
    a leading integer is complete when a non-digit follows it; a fallback token when
    whitespace follows it; a yes/no when a non-word character follows it.
    """
    if task_type == "comparison":
        m = _YES_NO.search(text)
        return bool(m) and m.end() < len(text)  # the regex's \b already saw a non-word character there
    body = text.lstrip()
    if not body:
        return False
    m = _LEADING_INT.match(body)
    if m:
        return m.end() < len(body)
    return any(c.isspace() for c in body)  # the fallback token ends at whitespace


def as_int(text: str | None) -> int | None:
    if text is None or not _LEADING_INT.fullmatch(text):
        return None
    return int(text)


def is_correct(completion: str, answer: str, task_type: str = "arithmetic") -> bool:
    return extract_answer(completion, task_type) == answer


def binary_score(completion: str, answer: str, task_type: str = "arithmetic") -> float:
    """The seed's reward: +1 for the right answer, -1 otherwise."""
    return 1.0 if is_correct(completion, answer, task_type) else -1.0


def partial_score(completion: str, answer: str, task_type: str = "arithmetic") -> float:
    """Graded credit: +1 correct, +0.5 off by 1, +0.25 off by 2-5, -0.5 a wrong answer, -1 no answer.

    For yes/no questions there is no distance: a wrong yes/no is -0.5, no yes/no at all -1.
    """
    given = extract_answer(completion, task_type)
    if given == answer:
        return 1.0
    if task_type == "comparison":
        return -1.0 if given is None else -0.5
    got, want = as_int(given), as_int(answer)
    if got is None or want is None:
        return -1.0
    distance = abs(got - want)
    if distance == 1:
        return 0.5
    if distance <= 5:
        return 0.25
    return -0.5


def _completion_text(completion) -> str:
    # Conversational datasets give a list of messages per completion; plain prompts give a string.
    if isinstance(completion, list):
        return completion[-1]["content"] if completion else ""
    return completion


def _scores(score: Callable[[str, str, str], float], completions, answer, task_type) -> list[float]:
    task_types = task_type or ["arithmetic"] * len(completions)
    return [score(_completion_text(c), a, t) for c, a, t in zip(completions, answer, task_types, strict=True)]


# TRL names the logged metric after the function: rewards/binary_reward/mean.
def binary_reward(completions, answer, task_type=None, **_) -> list[float]:
    """The seed's reward for each completion of a batch: +1 for the right answer, -1 otherwise."""
    return _scores(binary_score, completions, answer, task_type)


def partial_reward(completions, answer, task_type=None, **_) -> list[float]:
    """Graded credit for each completion of a batch (``partial_score``)."""
    return _scores(partial_score, completions, answer, task_type)


# The built-in rewards --reward names (the task's own are "task"; a user's are module:function or FILE.py:function).
REWARDS = {"binary": binary_reward, "partial": partial_reward}
TASK = "task"


def reward_function(name: str):
    return REWARDS[name]


@dataclass(frozen=True)
class RewardTerm:
    """One term of ``--reward``: what it names and its weight (TRL sums the rewards with these weights)."""

    name: str  # binary | partial | task | module:function | FILE.py:function
    weight: float = 1.0


_TERM = re.compile(r"\s*(?P<name>[^*+\s][^*+]*?)\s*(?:\*\s*(?P<weight>[^*+\s]+)\s*)?")


def parse_spec(spec: str | None, builtin_task: bool = True) -> list[RewardTerm]:
    """``binary``, ``partial+mod:fmt*0.2``, ``task+rewards.py:brevity*-0.1``: the reward terms, each checked now
    (a module or file is imported and its function looked up), so that a bad --reward is one line before any run.
    Text only: pure but for the imports it checks."""
    from .errors import ConfigError as GrpoLabError

    if spec is None or not spec.strip():
        raise GrpoLabError("--reward is empty; give binary, partial, task, or module:function")
    terms = []
    for part in spec.split("+"):
        m = _TERM.fullmatch(part)
        if not m:
            raise GrpoLabError(f"--reward {spec!r}: write NAME or NAME*WEIGHT joined by +, e.g. binary+mod:fmt*0.2")
        name, weight = m["name"], 1.0
        if m["weight"] is not None:
            try:
                weight = float(m["weight"])
            except ValueError:
                raise GrpoLabError(f"--reward {spec!r}: the weight {m['weight']!r} is not a number") from None
            if not math.isfinite(weight):
                raise GrpoLabError(f"--reward {spec!r}: the weight {m['weight']!r} is not a finite number")
        if name not in REWARDS and name != TASK:
            if ":" not in name:
                raise GrpoLabError(f"--reward {name!r} is not one of: {', '.join([*REWARDS, TASK])}, nor "
                                   "module:function or FILE.py:function")  # fmt: skip
            load_reward(name)
        if name == TASK and builtin_task:
            name = "binary"  # a built-in task's own reward is the seed's
        terms.append(RewardTerm(name, weight))
    if len({t.name for t in terms}) != len(terms):
        raise GrpoLabError(f"--reward {spec!r} names a reward twice; give each once, with its weight")
    return terms


def load_reward(name: str):
    """The function ``module:function`` or ``FILE.py:function`` names (imported), and what to record of it."""
    from .errors import GrpoLabError
    from .tasks.loading import TaskInfo, find_object, sha256

    obj, source = find_object(name, "reward")
    if not callable(obj):
        raise GrpoLabError(f"--reward {name}: {type(obj).__name__} is not a function")
    label = getattr(obj, "__name__", name.rsplit(":", 1)[-1])
    return obj, TaskInfo(label, "", str(source), sha256(source), name)
