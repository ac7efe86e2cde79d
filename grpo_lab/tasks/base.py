"""What a task is: seeded problems with group labels, a named problem space, answer extraction, and rewards.

A task is one Python object. grpo-lab's built-in datasets are tasks (tasks/arithmetic.py); a researcher's own task
is a subclass of ``Task`` in a file (``--task path/to/task.py``), in a module (``--task package.module:NAME``), or
offered by an installed package through the ``grpo_lab.tasks`` entry-point group (tasks/loading.py). A task needs
only ``name`` and ``generate``; everything else has a default::

    import random
    from grpo_lab.tasks import Problem, Task

    class Reverse(Task):
        name = "reverse-words"
        version = "1"

        def generate(self, rng: random.Random) -> Problem:
            words = rng.sample(["red", "blue", "green", "gold", "grey"], 3)
            return Problem(f"Reverse: {' '.join(words)} = ", " ".join(reversed(words)), operation="3 words")

    task = Reverse()

grpo-lab draws a run's training problems and its held-out problems from ``generate`` (distinct prompts, seeded),
never one whose prompt is in a suite the run evaluates on: the suites are held out of training by construction.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from ..errors import GrpoLabError
from ..text import check_text


@dataclass(frozen=True)
class Problem:
    """One problem: the prompt the model sees, the answer a completion must give, and the labels it is grouped by
    in per-group accuracy: ``task_type`` (the kind of problem), ``operation`` (the group metrics name, e.g.
    ``arith-v1[*]``), ``difficulty`` (a tier)."""

    prompt: str
    answer: str
    task_type: str = ""
    operation: str = ""
    difficulty: str = ""

    def row(self) -> dict[str, str]:
        return {
            "prompt": self.prompt,
            "answer": self.answer,
            "task_type": self.task_type,
            "operation": self.operation,
            "difficulty": self.difficulty,
        }


def exact_reward(completions, answer, task_type=None, **_) -> list[float]:
    """+1 when a completion's first line is the answer, -1 otherwise (a task without rewards of its own gets
    this, with its own ``extract`` rule through ``Task.reward_functions``)."""
    return [1.0 if first_line(c) == a else -1.0 for c, a in zip(completions, answer, strict=True)]


def first_line(completion: Any) -> str | None:
    """The default answer a completion gives: its first line, stripped (None when empty)."""
    if isinstance(completion, list):  # conversational: the last message
        completion = completion[-1]["content"] if completion else ""
    line = str(completion).strip().split("\n", 1)[0].strip()
    return line or None


class Task:
    """A family of problems to train on. Subclass it and set ``name`` and ``generate``; see the module's docstring.

    - ``name``: how runs, compare and the journal name the task (letters, digits, ``-``, ``_``, ``.``).
    - ``version``: change it whenever the problems, the answers or the rewards change.
    - ``space``: names the problem space ``generate`` draws from (default: the name).
    - ``suite``: its evaluation suite, a .jsonl file (path relative to the task's file): the default
      ``--eval_suite`` of a run of this task; its problems are held out of training by construction.
    - ``operations``: the ``operation`` labels its problems carry, when known ahead (then ``--criteria`` can
      name ``held_out[LABEL]`` before the run starts).
    - ``rewards``: reward functions with TRL's signature ``f(prompts, completions, answer, **columns) -> list
      of float`` (the problem's columns arrive as keyword lists), or ``(function, weight)`` pairs; TRL sums them
      with the weights. Default: +1 when ``correct``, -1 otherwise.
    - ``extract(completion, problem)``: the answer a completion gives (default: its first line, stripped);
      ``correct`` compares it with ``problem.answer``.
    - ``complete(text, problem)``: True once no more generated text can change the extracted answer (lets greedy
      evaluation stop early; default False: generate to the token limit).
    """

    name: str = ""
    version: str = "1"
    space: str = ""
    description: str = ""
    suite: str | None = None  # its evaluation suite: a .jsonl file beside the task's file (the default --eval_suite)
    operations: tuple[str, ...] | None = None
    rewards: list[Callable | tuple[Callable, float]] | None = None

    def generate(self, rng: random.Random) -> Problem:
        raise NotImplementedError(f"task {self.name or type(self).__name__} defines no generate(rng)")

    def extract(self, completion: str, problem: Problem) -> str | None:
        return first_line(completion)

    def correct(self, completion: str, problem: Problem) -> bool:
        return self.extract(completion, problem) == problem.answer

    def complete(self, text: str, problem: Problem) -> bool:
        return False

    def reward_functions(self) -> list[tuple[Callable, float]]:
        """The task's rewards as (function, weight) pairs (its ``rewards``, or the exact-answer reward through its
        own ``correct``)."""
        if not self.rewards:
            return [(self._correct_reward(), 1.0)]
        return [r if isinstance(r, tuple) else (r, 1.0) for r in self.rewards]

    def _correct_reward(self) -> Callable:
        task = self

        def correct_reward(completions, answer, task_type=None, operation=None, difficulty=None, prompts=None, **_):
            n = len(completions)
            columns = (prompts or [""] * n, answer, task_type or [""] * n, operation or [""] * n,
                       difficulty or [""] * n)  # fmt: skip
            return [1.0 if task.correct(_text(c), Problem(*row)) else -1.0
                    for c, row in zip(completions, zip(*columns, strict=True), strict=True)]  # fmt: skip

        correct_reward.__name__ = f"{self.name or 'task'}_correct".replace("-", "_")
        return correct_reward

    # -- drawing problems: grpo-lab calls these; a task may override them (e.g. to enumerate a small space) --
    def problems(self, n: int, seed: Any, exclude: Collection[str] = ()) -> list[Problem]:
        """``n`` problems with distinct prompts, none in ``exclude``, drawn from ``generate`` with a generator
        seeded by ``seed``: the same seed gives the same problems in the same order."""
        return draw(self, n, random.Random(seed), frozenset(exclude))

    def held_out(self, n: int, seed: Any, exclude: Collection[Problem] = ()) -> list[Problem]:
        """Up to ``n`` problems of the training kind, none of them in ``exclude`` (the training set) nor in the
        prompts held out for suites (``exclude`` holds those too)."""
        prompts = frozenset(p if isinstance(p, str) else p.prompt for p in exclude)
        return draw(self, n, random.Random(f"held-out:{seed}"), prompts, exact=False)


MAX_DRAWS_PER_PROBLEM = 50  # a space that cannot give n distinct problems in 50 * n draws (and 1,000) is too small


def draw(task: Task, n: int, rng: random.Random, exclude: frozenset[str], exact: bool = True) -> list[Problem]:
    """``n`` distinct problems from ``task.generate`` outside ``exclude``; ``exact``: all of them or an error (a
    held-out split takes what the space has left, at most ``n``)."""
    out: dict[str, Problem] = {}
    attempts = max(1000, MAX_DRAWS_PER_PROBLEM * n)
    for _ in range(attempts):
        if len(out) >= n:
            break
        problem = checked(task.name, task.generate(rng))
        if problem.prompt not in exclude:
            previous = out.setdefault(problem.prompt, problem)
            if previous.answer != problem.answer:
                raise GrpoLabError(
                    f"task {task.name}: the prompt {problem.prompt[:60]!r} came with two answers "
                    f"({previous.answer!r} and {problem.answer!r}); a prompt has one answer"
                )
    if len(out) < n and exact:
        raise GrpoLabError(
            f"task {task.name} gave only {len(out)} distinct problems outside its held-out suites in {attempts:,} "
            f"draws; lower --n_samples to {len(out)} or widen the task's problem space"
        )
    return list(out.values())


def checked(name: str, problem: Any) -> Problem:
    """A problem the task ``name`` made, refused in one line unless it is a Problem of text fields."""
    if not isinstance(problem, Problem):
        raise GrpoLabError(f"task {name} made a {type(problem).__name__}, not a grpo_lab.tasks.Problem")
    for field in ("prompt", "answer", "task_type", "operation", "difficulty"):
        value = getattr(problem, field)
        if not isinstance(value, str):
            raise GrpoLabError(f"task {name}: a problem's {field} is a {type(value).__name__} ({str(value)[:40]!r}); "
                               "it must be text (str)")  # fmt: skip
    if not problem.prompt.strip() or not problem.answer.strip():
        raise GrpoLabError(f"task {name} made a problem with an empty prompt or answer")
    for field in ("prompt", "answer", "task_type", "operation", "difficulty"):  # they reach terminals and files
        check_text(f"task {name}: a problem's {field}", getattr(problem, field), one_line=field != "prompt")
    return problem


def _text(completion: Any) -> str:
    if isinstance(completion, list):
        return completion[-1]["content"] if completion else ""
    return completion
