"""Whether a rerun reproduced its run: metric by metric, and the code and model each ran. Standard library only.

A metric reproduced *identically* when both runs recorded the same number; *within float noise* when the two
differ by no more than a relative 1e-5 (the same number computed in another order: a summation over threads, a
library's kernel; TRL's metrics are float32 means, whose epsilon is 1.2e-7 and which moved by 1.1e-6 in a rerun
of replication v2's baseline); else it *differs*. Accuracies are counts over totals: they reproduce identically or
not at all. A metric only one run has (an evaluation the other skipped) is *missing*.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from . import metrics
from .provenance import Code

NOISE = 1e-5  # relative difference still called float noise (float32 means over many tokens)
NOISE_FLOOR = 1e-12  # absolute: a KL of 3e-14 against 0 is noise too
IDENTICAL = "identical"
NOISE_WORD = "within float noise"
DIFFERS = "differs"
MISSING = "missing"


@dataclass(frozen=True)
class Line:
    """One metric of the run and of its rerun, and what became of it."""

    metric: str
    original: float | None
    rerun: float | None
    verdict: str  # identical | within float noise | differs | missing

    @property
    def difference(self) -> float | None:
        if self.original is None or self.rerun is None:
            return None
        return self.rerun - self.original


def verdict(original: float | None, rerun: float | None, tolerance: float = NOISE) -> str:
    if original is None or rerun is None:
        return MISSING
    if original == rerun:
        return IDENTICAL
    if math.isclose(original, rerun, rel_tol=tolerance, abs_tol=NOISE_FLOOR):
        return NOISE_WORD
    return DIFFERS


def compare_metrics(original: Mapping[str, float], rerun: Mapping[str, float], tolerance: float = NOISE) -> list[Line]:
    """Every metric either run has: accuracies after training first (the run's own sets, then the suites), each
    followed by its groups, then what was measured before training and the gains, then the training curve."""
    names = sorted({*original, *rerun}, key=_order)
    return [Line(n, original.get(n), rerun.get(n), verdict(original.get(n), rerun.get(n), tolerance)) for n in names]


_SUFFIX_RANK = {None: 0, "before": 1, "gain": 2, "overlap": 3}


def _order(name: str) -> tuple:
    parsed = metrics.parse(name)
    if parsed is None:  # the training curve, last
        return (9, 0, "", 0, name)
    own = metrics.OWN_SPLITS.index(parsed.split) if parsed.split in metrics.OWN_SPLITS else 2
    return (_SUFFIX_RANK[parsed.suffix], own, parsed.split, parsed.group is not None, name)


def reproduced(lines: list[Line]) -> bool:
    """Whether every metric reproduced (identically or within float noise); a run with no metrics did not."""
    return bool(lines) and all(line.verdict in (IDENTICAL, NOISE_WORD) for line in lines)


def summary(lines: list[Line]) -> str:
    """One sentence: ``reproduced exactly: 40 of 40 metrics identical``, or which metrics did not reproduce."""
    if not lines:
        return "nothing to compare: neither run recorded a metric"
    counts = {v: sum(line.verdict == v for line in lines) for v in (IDENTICAL, NOISE_WORD, DIFFERS, MISSING)}
    n = len(lines)
    if counts[IDENTICAL] == n:
        return f"reproduced exactly: {n} of {n} metrics identical"
    if reproduced(lines):
        return (
            f"reproduced within float noise: {counts[IDENTICAL]} of {n} metrics identical, "
            f"{counts[NOISE_WORD]} within float noise"
        )
    parts = [f"{counts[IDENTICAL]} of {n} identical"]
    if counts[NOISE_WORD]:
        parts.append(f"{counts[NOISE_WORD]} within float noise")
    for word in (DIFFERS, MISSING):
        if counts[word]:
            names = [line.metric for line in lines if line.verdict == word]
            shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
            parts.append(f"{counts[word]} {'differ' if word == DIFFERS else 'missing'} ({shown})")
    return "not reproduced: " + "; ".join(parts)


def code_of(run) -> Code:
    """The code a recorded run ran, from its row (a store Run, or anything with its git columns)."""
    return Code(run.git_commit, run.git_dirty, getattr(run, "code_diff", None), getattr(run, "code_diff_bytes", None))


def describe(code: Code) -> str:
    """``commit 5a681becdbd9``, with ``and uncommitted changes (its diff kept, 3,456 bytes)`` where dirty."""
    if code.commit is None:
        return "no git commit (outside a git work tree)"
    text = f"commit {code.commit[:12]}"
    if not code.dirty:
        return text
    if code.diff is not None:
        return f"{text} and uncommitted changes (their diff kept, {len(code.diff.encode()):,} bytes)"
    if code.diff_bytes:
        return f"{text} and uncommitted changes (their diff of {code.diff_bytes:,} bytes was not kept)"
    return f"{text} and uncommitted changes (not kept: recorded before grpo-lab kept them)"


def same_code(recorded: Code, now: Code) -> bool | None:
    """Whether the code here is the code the run ran: True, False, or None when the record cannot tell (no commit
    recorded, or uncommitted changes whose diff was not kept)."""
    if recorded.commit is None or now.commit is None:
        return None
    if recorded.commit != now.commit:
        return False
    if not recorded.dirty and not now.dirty:
        return True
    if recorded.dirty and recorded.diff is None:
        return None
    return bool(recorded.dirty) == bool(now.dirty) and recorded.diff == now.diff


def code_line(recorded: Code, now: Code) -> str:
    """What the reproduction report says of the code: the same, or what each run ran."""
    same = same_code(recorded, now)
    if recorded.commit is None and now.commit is None:
        return "unknown: neither run ran in a git work tree"
    if same:
        return f"the same: {describe(now)}"
    if same is None and recorded.commit is not None and recorded.commit == now.commit:
        return f"{describe(recorded)} then; {describe(now)} now: whether the changes are the same is unknown"
    word = "unknown" if same is None else "differs"
    return f"{word}: {describe(recorded)} then, {describe(now)} now"
