"""Greedy, batched evaluation with per-group accuracy.

One ``generate`` call per batch, left padding, no sampling: the same model on the same problems
gives the same completions every time. A row stops generating as soon as its answer is complete
(``rewards.answer_complete``, exactly as strict as the extraction rule), so a model that never
emits <eos> does not pay for ``max_new_tokens`` on every row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial

from .rewards import answer_complete, extract_answer
from .tasks import Problem

GROUP_DIMENSIONS = ("operation", "task_type", "difficulty")


@dataclass(frozen=True)
class Prediction:
    prompt: str
    answer: str
    task_type: str
    operation: str
    difficulty: str
    completion: str
    extracted: str | None
    correct: bool


@dataclass(frozen=True)
class Counts:
    correct: int
    total: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


@dataclass
class EvalResult:
    split: str  # "train", "held_out", or a suite name
    predictions: list[Prediction]

    @property
    def overall(self) -> Counts:
        return Counts(sum(p.correct for p in self.predictions), len(self.predictions))

    @property
    def accuracy(self) -> float:
        return self.overall.accuracy

    def groups(self) -> dict[str, dict[str, Counts]]:
        """dimension -> group -> counts, for every dimension with a value on some row."""
        tally: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
        for p in self.predictions:
            for dim in GROUP_DIMENSIONS:
                group = getattr(p, dim)
                if group:
                    tally[dim][group][0] += p.correct
                    tally[dim][group][1] += 1
        return {dim: {g: Counts(*ct) for g, ct in sorted(groups.items())} for dim, groups in tally.items()}

    def to_dict(self) -> dict:
        return {
            "split": self.split,
            "correct": self.overall.correct,
            "total": self.overall.total,
            "accuracy": self.accuracy,
            "groups": {d: {g: asdict(c) for g, c in gs.items()} for d, gs in self.groups().items()},
        }


def _answer_stop(tokenizer, prompt_width: int, complete: Sequence[Callable[[str], bool]]):
    from transformers import StoppingCriteria

    class AnswerComplete(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            import torch

            texts = tokenizer.batch_decode(input_ids[:, prompt_width:], skip_special_tokens=True)
            done = [is_done(t) for t, is_done in zip(texts, complete, strict=True)]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return AnswerComplete()


def generate_greedy(
    model,
    tokenizer,
    prompts: Sequence[str],
    task_types: Sequence[str] | Sequence[Callable[[str], bool]],
    max_new_tokens: int = 16,
    batch_size: int = 256,
    stop_at_answer: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Greedy completions for ``prompts``, in order. ``task_types`` says when each row's answer is complete: the
    built-in tasks' task types (``rewards.answer_complete``), or a function of the generated text per row."""
    import torch
    from transformers import StoppingCriteriaList

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out: list[str] = []
    try:
        for start in range(0, len(prompts), batch_size):
            chunk = list(prompts[start : start + batch_size])
            enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            width = enc["input_ids"].shape[1]
            stops = StoppingCriteriaList()
            if stop_at_answer:
                rows = [k if callable(k) else partial(answer_complete, task_type=k)
                        for k in task_types[start : start + batch_size]]  # fmt: skip
                stops.append(_answer_stop(tokenizer, width, rows))
            with torch.no_grad():
                ids = model.generate(
                    **enc,
                    do_sample=False,
                    max_new_tokens=max_new_tokens,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                    stopping_criteria=stops,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                )
            out.extend(tokenizer.batch_decode(ids[:, width:], skip_special_tokens=True))
            if on_progress:
                on_progress(len(out), len(prompts))
    finally:
        model.train(was_training)
    return out


def score(problems: Sequence[Problem], completions: Sequence[str], split: str, task=None) -> EvalResult:
    """Each completion's answer (``task.extract``; the built-in rule without a task) and whether it is right."""
    predictions = []
    for p, completion in zip(problems, completions, strict=True):
        if task is None:
            extracted = extract_answer(completion, p.task_type)
            correct = extracted == p.answer
        else:
            extracted = task.extract(completion, p)
            correct = bool(task.correct(completion, p))
        predictions.append(
            Prediction(p.prompt, p.answer, p.task_type, p.operation, p.difficulty, completion, extracted, correct)
        )
    return EvalResult(split, predictions)


def evaluate(
    model,
    tokenizer,
    problems: Sequence[Problem],
    split: str,
    max_new_tokens: int = 16,
    batch_size: int = 256,
    on_progress: Callable[[int, int], None] | None = None,
    task=None,
) -> EvalResult:
    """Greedy accuracy of ``model`` on ``problems``; ``task`` (a tasks.Task) extracts and judges the answers and
    says when one is complete (None: the built-in arithmetic rules)."""
    stop = [p.task_type for p in problems] if task is None else [partial(task.complete, problem=p) for p in problems]
    completions = generate_greedy(
        model,
        tokenizer,
        [p.prompt for p in problems],
        stop,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        on_progress=on_progress,
    )
    return score(problems, completions, split, task)
