"""An example task for grpo-lab: sort a short list of numbers, as a researcher would write their own.

    grpo-lab run --task examples/sort_task.py --model_name tiny-arith --hypothesis "..."

A task is one object: a name and a version, ``generate`` (one random problem), and, optionally, how an answer is
read from a completion (``extract``), how it is scored (``rewards``: TRL's reward-function signature, with weights)
and its own evaluation suite (``suite``). grpo-lab draws the training problems and the held-out ones from
``generate`` (distinct, seeded), never one of the suite's, and records the task's name, version and the SHA-256 of
this file with every run. ``python examples/sort_task.py`` writes the suite, ``examples/sort-v1.jsonl``.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from grpo_lab.tasks import Problem, Task

LENGTHS = (2, 3, 4)  # numbers per list; each length is a group of its own: len2, len3, len4
HIGHEST = 20  # numbers are drawn from 0..HIGHEST
_NUMBER = re.compile(r"-?\d+")


def numbers_in(text: str | None) -> list[int]:
    return [int(n) for n in _NUMBER.findall(text or "")]


def sorted_reward(completions, answer, **_) -> list[float]:
    """+1 for the sorted list; otherwise the share of positions holding the right number, scaled into [-1, 0.5]
    (so a nearly sorted list beats a wrong one); -1 for a completion with no number."""
    out = []
    for completion, want in zip(completions, answer, strict=True):
        got, expected = numbers_in(_first_line(completion)), numbers_in(want)
        if got == expected:
            out.append(1.0)
        elif not got:
            out.append(-1.0)
        else:
            right = sum(g == e for g, e in zip(got, expected, strict=False)) / len(expected)
            out.append(-1.0 + 1.5 * right)
    return out


def same_numbers_reward(completions, answer, **_) -> list[float]:
    """+1 when the completion holds exactly the list's numbers in some order, else 0: credit for keeping the
    numbers, whatever their order."""
    return [1.0 if sorted(numbers_in(_first_line(c))) == numbers_in(a) else 0.0
            for c, a in zip(completions, answer, strict=True)]  # fmt: skip


def _first_line(completion) -> str:
    text = completion if isinstance(completion, str) else completion[-1]["content"]
    return text.strip().split("\n", 1)[0]


class SortNumbers(Task):
    name = "sort-numbers"
    version = "1"
    description = "sort 2-4 numbers from 0-20 ascending"
    operations = tuple(f"len{k}" for k in LENGTHS)
    rewards = [(sorted_reward, 1.0), (same_numbers_reward, 0.25)]
    suite = "sort-v1.jsonl"

    def generate(self, rng: random.Random) -> Problem:
        k = rng.choice(LENGTHS)
        numbers = [rng.randint(0, HIGHEST) for _ in range(k)]
        prompt = f"Sort: {' '.join(map(str, numbers))} = "
        return Problem(prompt, " ".join(map(str, sorted(numbers))), "sorting", f"len{k}",
                       "repeats" if len(set(numbers)) < k else "distinct")  # fmt: skip

    def extract(self, completion: str, problem: Problem) -> str | None:
        found = numbers_in(_first_line(completion))
        return " ".join(map(str, found)) if found else None

    def complete(self, text: str, problem: Problem) -> bool:
        return "\n" in text.lstrip()  # the answer is the first line


task = SortNumbers()


SUITE_FILE = Path(__file__).with_name("sort-v1.jsonl")


def write_suite(path: Path = SUITE_FILE, n: int = 60) -> None:
    """The example's suite: 60 problems, 20 of each length, drawn with their own seed (a run's training problems
    never include them: grpo-lab holds a task's suite out of its training set by construction)."""
    rng, seen, rows = random.Random("sort-v1"), set(), []
    for k in LENGTHS:
        while sum(r["operation"] == f"len{k}" for r in rows) < n // len(LENGTHS):
            problem = task.generate(rng)
            if problem.operation == f"len{k}" and problem.prompt not in seen:
                seen.add(problem.prompt)
                rows.append(problem.row())
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


if __name__ == "__main__":
    write_suite()
