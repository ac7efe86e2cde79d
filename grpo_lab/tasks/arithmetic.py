"""The built-in tasks: arithmetic, small_numbers and mixed (arithmetic + counting + comparison), the seed's datasets.

Every problem is a row with the columns GRPOTrainer passes through to the reward functions:
``prompt``, ``answer`` (the expected answer as a string), ``task_type`` and ``operation``.
Problems are drawn without replacement from the space the ranges allow, so a dataset never
holds the same problem twice, and the same seed always gives the same rows in the same order.

No training set and no run's own held-out split ever contains a problem of the built-in evaluation suites the
run reserves (``--reserve``; by default every v1 suite, suites.reserved_prompts): those problems are cut out of
every space before sampling, so a suite score is always a score on problems the model was never trained on.
"""

from __future__ import annotations

import bisect
import random
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .base import Problem, Task

DATASET_TYPES = ("arithmetic", "mixed", "small_numbers")
OPS = ("+", "-", "*")
SMALL_NUMBERS_RANGE = (0, 10)
COUNT_WORDS = (
    "apple", "cat", "dog", "tree", "blue", "sun", "moon", "book", "fish", "bird",
    "car", "red", "star", "milk", "rain", "door", "hat", "cup", "pen", "box",
)  # fmt: skip
COUNT_RANGE = (1, 10)


def arithmetic_prompt(a: int, op: str, b: int) -> str:
    return f"Calculate: {a} {op} {b} = "


def count_prompt(word: str, k: int) -> str:
    return f"Count the words: {' '.join([word] * k)}. Answer: "


def compare_prompt(a: int, b: int) -> str:
    return f"Is {a} greater than {b}? Answer yes or no: "


def compute(a: int, op: str, b: int) -> int:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0 or a % b:
            raise ValueError(f"{a} / {b} is not an exact integer division")
        return a // b
    raise ValueError(f"unknown operation {op!r}")


def arithmetic_problem(a: int, op: str, b: int, difficulty: str = "") -> Problem:
    return Problem(arithmetic_prompt(a, op, b), str(compute(a, op, b)), "arithmetic", op, difficulty)


def counting_problem(word: str, k: int, difficulty: str = "") -> Problem:
    return Problem(count_prompt(word, k), str(k), "counting", "count", difficulty)


def comparison_problem(a: int, b: int, difficulty: str = "") -> Problem:
    return Problem(compare_prompt(a, b), "yes" if a > b else "no", "comparison", "compare", difficulty)


# --- problem spaces -------------------------------------------------------------------------------------------
# Each space maps an index in range(size) to one distinct problem and back (``index_of`` a prompt, None when
# the prompt is not in the space), so sampling indices without replacement gives unique problems without
# materialising large spaces, and excluded problems (the suites') are cut out by index.

_ARITH = re.compile(r"Calculate: (-?\d+) ([-+*/]) (-?\d+) = ")
_COUNT = re.compile(r"Count the words: ([a-z]+)((?: \1)*)\. Answer: ")
_COMPARE = re.compile(r"Is (-?\d+) greater than (-?\d+)\? Answer yes or no: ")


def task_type_of(prompt: str) -> str:
    """The task type of a prompt the builders above wrote (arithmetic for any other text).

    Training samples are stored with their prompt but not their task type, and the answer a completion
    gives depends on it (rewards.extract_answer). tests/test_tasks.py checks this against every builder.
    """
    if _COMPARE.fullmatch(prompt):
        return "comparison"
    if _COUNT.fullmatch(prompt):
        return "counting"
    return "arithmetic"


@dataclass(frozen=True)
class _Space:
    size: int
    make: Callable[[int], Problem]
    index_of: Callable[[str], int | None]


def _arithmetic_space(lo: int, hi: int, ops: Sequence[str] = OPS) -> _Space:
    width = hi - lo + 1

    def make(i: int) -> Problem:
        op_i, rest = divmod(i, width * width)
        a, b = divmod(rest, width)
        return arithmetic_problem(lo + a, ops[op_i], lo + b)

    def index_of(prompt: str) -> int | None:
        m = _ARITH.fullmatch(prompt)
        if not m or m.group(2) not in ops:
            return None
        a, b = int(m.group(1)), int(m.group(3))
        if not (lo <= a <= hi and lo <= b <= hi):
            return None
        return ops.index(m.group(2)) * width * width + (a - lo) * width + (b - lo)

    return _Space(len(ops) * width * width, make, index_of)


def _counting_space() -> _Space:
    width = COUNT_RANGE[1] - COUNT_RANGE[0] + 1

    def make(i: int) -> Problem:
        w, k = divmod(i, width)
        return counting_problem(COUNT_WORDS[w], COUNT_RANGE[0] + k)

    def index_of(prompt: str) -> int | None:
        m = _COUNT.fullmatch(prompt)
        if not m or m.group(1) not in COUNT_WORDS:
            return None
        k = 1 + m.group(2).count(" ")
        if not COUNT_RANGE[0] <= k <= COUNT_RANGE[1]:
            return None
        return COUNT_WORDS.index(m.group(1)) * width + (k - COUNT_RANGE[0])

    return _Space(len(COUNT_WORDS) * width, make, index_of)


def _comparison_space(lo: int, hi: int) -> _Space:
    width = hi - lo + 1

    def make(i: int) -> Problem:
        a, b = divmod(i, width)
        return comparison_problem(lo + a, lo + b)

    def index_of(prompt: str) -> int | None:
        m = _COMPARE.fullmatch(prompt)
        if not m:
            return None
        a, b = int(m.group(1)), int(m.group(2))
        return (a - lo) * width + (b - lo) if lo <= a <= hi and lo <= b <= hi else None

    return _Space(width * width, make, index_of)


def _excluded(space: _Space, prompts: Iterable[str]) -> list[int]:
    """The sorted indices of ``space`` that hold one of ``prompts``."""
    return sorted({i for i in map(space.index_of, prompts) if i is not None})


def _sample(rng: random.Random, space: _Space, k: int, excluded: list[int]) -> list[Problem]:
    """``k`` distinct problems of ``space`` drawn uniformly from those whose index is not in ``excluded``."""
    free = space.size - len(excluded)
    draws = rng.sample(range(free), min(k, free))
    return [space.make(_nth_free(j, excluded)) for j in draws]


def _nth_free(j: int, excluded: list[int]) -> int:
    """The index of the j-th (0-based) index not in the sorted list ``excluded``."""
    lo, hi = j, j + len(excluded)  # the answer lies in [j, j + len(excluded)]
    while lo < hi:  # smallest i with i - (number of excluded <= i) >= j
        mid = (lo + hi) // 2
        if mid - bisect.bisect_right(excluded, mid) >= j:
            hi = mid
        else:
            lo = mid + 1
    return lo


def reserved(suites: Collection[str] | None = None) -> frozenset[str]:
    """Prompts no training set or own held-out split may contain: the problems of ``suites`` (built-in suite names;
    None: every v1 suite, the reservation of every run recorded before --reserve existed)."""
    from ..suites import reserved_prompts  # suites imports this module

    return reserved_prompts() if suites is None else reserved_prompts(tuple(suites))


def resolve_range(dataset_type: str, min_num: int | None, max_num: int | None) -> tuple[int, int]:
    """The operand range a dataset type uses; small_numbers fixes it to 0-10."""
    if dataset_type == "small_numbers":
        lo, hi = SMALL_NUMBERS_RANGE
        if (min_num is not None and min_num != lo) or (max_num is not None and max_num != hi):
            raise ConfigError(
                f"--dataset_type small_numbers uses the range {lo}-{hi}; "
                "drop --min_num/--max_num or use --dataset_type arithmetic"
            )
        return lo, hi
    lo = 0 if min_num is None else min_num
    hi = 20 if max_num is None else max_num
    if lo > hi:
        raise ConfigError(f"--min_num ({lo}) is larger than --max_num ({hi}); swap them")
    return lo, hi


def _plan(dataset_type: str, n: int, lo: int, hi: int) -> list[tuple[_Space, int]]:
    """The spaces a dataset draws from and how many problems each contributes."""
    if dataset_type in ("arithmetic", "small_numbers"):
        return [(_arithmetic_space(lo, hi), n)]
    if dataset_type == "mixed":
        n_count = n_cmp = n // 4
        return [
            (_arithmetic_space(lo, hi), n - n_count - n_cmp),
            (_counting_space(), n_count),
            (_comparison_space(lo, hi), n_cmp),
        ]
    raise ConfigError(f"unknown --dataset_type {dataset_type!r}; choose one of {', '.join(DATASET_TYPES)}")


def _available(space: _Space, exclude: Collection[str]) -> int:
    return space.size - len(_excluded(space, exclude))


def operations(dataset_type: str) -> list[str]:
    """The operations a dataset type's problems have (their per-operation accuracy groups)."""
    return sorted({*OPS, "count", "compare"} if dataset_type == "mixed" else OPS)


def max_samples(dataset_type: str, lo: int, hi: int, reserve: Collection[str] | None = None) -> int:
    """The largest n_samples for which every part of the dataset has enough distinct problems, not
    counting the problems of the reserved built-in suites, which training never uses."""
    exclude = reserved(reserve)
    plan = _plan(dataset_type, 0, lo, hi)
    sizes = [_available(space, exclude) for space, _ in plan]
    n = sum(sizes)
    while n > 0 and any(k > size for (_, k), size in zip(_plan(dataset_type, n, lo, hi), sizes, strict=True)):
        n -= 1
    return n


def check_samples(dataset_type: str, n_samples: int, lo: int, hi: int, reserve: Collection[str] | None = None) -> None:
    if n_samples < 1:
        raise ConfigError(f"--n_samples must be at least 1 (got {n_samples})")
    exclude = reserved(reserve)
    if any(k > _available(space, exclude) for space, k in _plan(dataset_type, n_samples, lo, hi)):
        top = max_samples(dataset_type, lo, hi, reserve)
        raise ConfigError(
            f"--n_samples {n_samples} exceeds the {top} distinct {dataset_type} problems that "
            f"operands {lo}-{hi} allow outside the evaluation suites; lower --n_samples or widen --min_num/--max_num"
        )


def generate_problems(
    dataset_type: str, n_samples: int, min_num: int | None = None, max_num: int | None = None, seed: int = 42,
    reserve: Collection[str] | None = None, exclude: Collection[str] = (),
) -> list[Problem]:  # fmt: skip
    """``n_samples`` distinct problems in a seeded, shuffled order, none of them in a reserved built-in suite (nor
    among the prompts ``exclude`` names)."""
    lo, hi = resolve_range(dataset_type, min_num, max_num)
    check_samples(dataset_type, n_samples, lo, hi, reserve)
    rng = random.Random(seed)
    exclude = reserved(reserve) | frozenset(exclude)
    plan = _plan(dataset_type, n_samples, lo, hi)
    problems = [p for space, k in plan for p in _sample(rng, space, k, _excluded(space, exclude))]
    rng.shuffle(problems)
    return problems


def held_out_problems(
    dataset_type: str,
    n: int,
    exclude: Iterable[Problem],
    min_num: int | None = None,
    max_num: int | None = None,
    seed: int = 42,
    reserve: Collection[str] | None = None,
) -> list[Problem]:
    """Up to ``n`` problems from the same distribution as a training set, none of them in it nor in a reserved
    suite."""
    lo, hi = resolve_range(dataset_type, min_num, max_num)
    seen = reserved(reserve) | {p.prompt for p in exclude}
    rng = random.Random(f"held-out:{seed}")
    out = [p for space, k in _plan(dataset_type, n, lo, hi) for p in _sample(rng, space, k, _excluded(space, seen))]
    rng.shuffle(out)
    return out


def overlap(problems: Iterable[Problem], suite: Iterable[Problem]) -> int:
    """How many of ``problems`` (a training set) are also in ``suite``, by prompt."""
    prompts = {p.prompt for p in suite}
    return sum(p.prompt in prompts for p in problems)


class Arithmetic(Task):
    """A built-in dataset type as a task: the seed's arithmetic, small_numbers and mixed problems, with the seed's
    answer extraction and rewards (``--reward binary`` or ``partial``)."""

    version = "1"
    space_version = 1

    def __init__(self, dataset_type: str, min_num: int | None = None, max_num: int | None = None,
                 reserve: Collection[str] | None = None):  # fmt: skip
        if dataset_type not in DATASET_TYPES:
            raise ConfigError(f"unknown --dataset_type {dataset_type!r}; choose one of {', '.join(DATASET_TYPES)}")
        self.name = dataset_type
        self.lo, self.hi = resolve_range(dataset_type, min_num, max_num)
        self.reserve = None if reserve is None else tuple(reserve)
        self.space = f"{dataset_type}:{self.lo}-{self.hi}"
        self.operations = tuple(operations(dataset_type))
        self.description = {
            "arithmetic": "a op b with + - * on the operand range (default 0-20)",
            "small_numbers": "a op b with + - * on 0-10",
            "mixed": "50% arithmetic, 25% counting words, 25% comparing two numbers",
        }[dataset_type]

    def problems(self, n: int, seed: Any, exclude: Collection[str] = ()) -> list[Problem]:
        return generate_problems(self.name, n, self.lo, self.hi, seed, self.reserve, exclude)

    def held_out(self, n: int, seed: Any, exclude: Collection[Problem] = ()) -> list[Problem]:
        return held_out_problems(self.name, n, exclude, self.lo, self.hi, seed, self.reserve)

    def extract(self, completion: str, problem: Problem) -> str | None:
        from ..rewards import extract_answer

        return extract_answer(completion, problem.task_type)

    def complete(self, text: str, problem: Problem) -> bool:
        from ..rewards import answer_complete

        return answer_complete(text, problem.task_type)


def to_dataset(problems: Sequence[Problem]):
    """A ``datasets.Dataset`` with one row per problem (imported lazily: datasets is slow to import)."""
    from datasets import Dataset

    return Dataset.from_list([p.row() for p in problems])
