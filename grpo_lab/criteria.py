"""Pre-registered success criteria and the verdict they give when a run ends.

``--criteria`` is written before the run, in the condition language of ``compare --where`` over the
run's own metrics (metrics.py), for example ``arith-v1 >= 0.42 and kl_last < 1`` or
``arith-v1_gain >= 0.02``. It is parsed and checked against the metrics the run will have before
anything loads. Text with no comparison in it is kept as free text, and its verdict is ``unchecked``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from . import filters, metrics
from .errors import GrpoLabError

VERDICTS = ("confirmed", "rejected", "unchecked")
OPTION = "--criteria"


@dataclass(frozen=True)
class Verdict:
    status: str  # confirmed | rejected | unchecked
    detail: str  # the values that decided it, e.g. "arith-v1 0.395 < 0.42"

    def sentence(self) -> str:
        if self.status == "unchecked":
            return f"Verdict unchecked: {self.detail}"
        return f"Hypothesis {self.status}: {self.detail}"


def parse(text: str | None, splits: Mapping[str, Iterable[str]]) -> list[filters.Condition] | None:
    """The criteria as conditions over the metrics of a run evaluated on ``splits``; None for free text."""
    if not text or not filters.looks_like_conditions(text):
        return None
    conditions = filters.parse(text, metrics.valid_names(splits), OPTION)
    for c in conditions:
        if not isinstance(c.value, float):
            raise GrpoLabError(f"{OPTION}: {c.field} is compared with {c.value!r}; criteria compare numbers")
    return conditions


def decide(text: str | None, conditions: list[filters.Condition] | None, values: Mapping[str, float],
           status: str) -> Verdict:  # fmt: skip
    """The verdict of a run that ended with ``status`` and ``values`` (its metrics)."""
    if not text:
        return Verdict("unchecked", "no criteria were given")
    if conditions is None:
        return Verdict("unchecked", "the criteria are free text; write FIELD OP VALUE to have them checked")
    if status != "finished":
        return Verdict("unchecked", f"the run {status} before its criteria could be checked")
    missing = [c.field for c in conditions if values.get(c.field) is None]
    if missing:
        return Verdict("unchecked", f"not measured: {', '.join(missing)}")
    failed = [c for c in conditions if not c.holds(values[c.field])]
    if failed:
        return Verdict(
            "rejected",
            ", ".join(f"{c.field} {_num(values[c.field])} {filters.NEGATION[c.op]} {_num(c.value)}" for c in failed),
        )
    held = ", ".join(f"{c.field} {_num(values[c.field])} {c.op} {_num(c.value)}" for c in conditions)
    return Verdict("confirmed", held)


def _num(value: float) -> str:
    return f"{value:.4g}"
