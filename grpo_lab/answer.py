"""The answer to a sweep's question, built once and drawn three ways (the terminal's text forest plot here, the
journal's PNG in journal.py, the report's chart in its template): per arm the difference from the baseline, its
interval, what its pre-registered criterion claims in words, the verdict in words, and what the arm could have
detected (its minimum detectable effect).

A criterion is a claim: ``diff > 0 and p_holm < 0.05`` says the arm is better than the baseline; ``ci_low > -0.02``
that it is no worse by 2 points; ``diff < 0 and p_holm < 0.05`` that it is worse. Verdict values stay confirmed,
rejected and unchecked; beside them, the claim is said in words ("no worse than baseline by 2 pt: confirmed";
"better than baseline: not shown, p_holm 0.19"). Pure: no I/O.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import filters

ALPHA = 0.05  # what "significant" means where a criterion names no p threshold


# --- a criterion in words ---------------------------------------------------------------------------------------


def _amount(value: float, points: bool) -> str:
    return f"{abs(value) * 100:.3g} pt" if points else f"{abs(value):.3g}"


def claim(text: str | None, points: bool = True) -> str:
    """A compare criterion (over diff, ci_low, ci_high, p, p_holm, ...) as the claim it makes, in words."""
    if not text:
        return "no criterion"
    try:
        conditions = filters.parse(text, ("diff", "ci_low", "ci_high", "p", "p_holm", "n", "value", "baseline"))
    except Exception:  # noqa: BLE001  (a criterion recorded by an older grpo-lab: shown as written)
        return text
    by = {(c.field, c.op[0]): c.value for c in conditions if isinstance(c.value, float)}
    significant = any(f in ("p", "p_holm") and op == "<" for f, op in by)
    lower = by.get(("ci_low", ">"), by.get(("diff", ">")))
    upper = by.get(("ci_high", "<"), by.get(("diff", "<")))
    if lower is not None and upper is not None and lower < 0 < upper:
        return f"within ±{_amount(max(-lower, upper), points)} of baseline"
    if lower is not None:
        if lower < 0:
            return f"no worse than baseline by {_amount(lower, points)}"
        if lower > 0:
            return f"better than baseline by more than {_amount(lower, points)}"
        return "better than baseline"
    if upper is not None:
        if upper > 0:
            return f"no better than baseline by {_amount(upper, points)}"
        if upper < 0:
            return f"worse than baseline by more than {_amount(upper, points)}"
        return "worse than baseline"
    if significant:
        return "different from baseline"
    return text


def names_p(text: str | None) -> bool:
    """Whether a criterion asks for a p-value (p or p_holm below a threshold): only then can too few seeds make it
    impossible to meet (an interval-based criterion can be met with any number of seeds)."""
    if not text:
        return False
    try:
        conditions = filters.parse(text, ("diff", "ci_low", "ci_high", "p", "p_holm", "n", "value", "baseline"))
    except Exception:  # noqa: BLE001
        return False
    return any(c.field in ("p", "p_holm") and c.op in ("<", "<=") for c in conditions)


def alpha_of(text: str | None) -> tuple[float, bool]:
    """The significance a criterion asks for, and whether on the Holm-adjusted p: (0.05, True) for
    ``p_holm < 0.05``; ALPHA (Holm) when it names no p."""
    if text:
        try:
            conditions = filters.parse(text, ("diff", "ci_low", "ci_high", "p", "p_holm", "n", "value", "baseline"))
        except Exception:  # noqa: BLE001
            return ALPHA, True
        for c in conditions:
            if c.field in ("p_holm", "p") and c.op in ("<", "<=") and isinstance(c.value, float):
                return c.value, c.field == "p_holm"
    return ALPHA, True


def thresholds(text: str | None) -> list[float]:
    """The values a criterion draws on the difference's axis (diff, ci_low, ci_high bounds), besides zero."""
    if not text:
        return []
    try:
        conditions = filters.parse(text, ("diff", "ci_low", "ci_high", "p", "p_holm", "n", "value", "baseline"))
    except Exception:  # noqa: BLE001
        return []
    return sorted({c.value for c in conditions if c.field in ("diff", "ci_low", "ci_high")
                   and isinstance(c.value, float) and c.value != 0})  # fmt: skip


def verdict_words(status: str | None, claim_text: str, row: dict[str, Any], points: bool = True) -> str:
    """``better than baseline: not shown, p_holm 0.19`` and the like: the claim and what became of it."""
    if status == "confirmed":
        return f"{claim_text}: confirmed"
    if status == "rejected":  # the evidence the claim rested on: its p, or else the interval's bound
        scale, unit = (100, " pt") if points else (1, "")
        if row.get("p_holm") is not None and ("baseline" not in claim_text or " by " not in claim_text):
            evidence = f"p_holm {row['p_holm']:.2g}"
        elif "no worse" in claim_text and row.get("ci_low") is not None:
            evidence = f"ci_low {row['ci_low'] * scale:+.3g}{unit}"
        elif row.get("ci_high") is not None and "no better" in claim_text:
            evidence = f"ci_high {row['ci_high'] * scale:+.3g}{unit}"
        else:
            evidence = ""
        return f"{claim_text}: not shown" + (f", {evidence}" if evidence else "")
    return f"{claim_text}: {status or 'unchecked'}"


def run_claim(text: str | None) -> str | None:
    """A run's --criteria (over its own metrics) in words: ``arith-v1_gain > 0`` -> ``arith-v1 rises``."""
    if not text or not filters.looks_like_conditions(text):
        return None
    parts = []
    for raw in text.split(" and "):
        bits = raw.split()
        if len(bits) != 3:
            return None
        name, op, value = bits
        try:
            number = float(value)
        except ValueError:
            return None
        base, gain = (name[: -len("_gain")], True) if name.endswith("_gain") else (name, False)
        accuracy = base in ("held_out", "train_acc") or "-v" in base or "[" in base
        shown = f"{number * 100:g}{' pt' if gain else '%'}" if accuracy else f"{number:g}"
        if gain and number == 0 and op in (">", ">="):
            parts.append(f"{base} rises" if op == ">" else f"{base} does not fall")
        elif gain:
            parts.append(f"{base} {'rises' if op.startswith('>') else 'changes'} by {op} {shown}")
        else:
            parts.append(f"{base} {op} {shown}")
    return " and ".join(parts)


# --- the forest plot's model -------------------------------------------------------------------------------------


@dataclass
class ForestRow:
    arm: str
    diff: float | None
    low: float | None
    high: float | None
    status: str  # confirmed | rejected | unchecked | baseline
    words: str  # the claim and the verdict, in words
    mde: float | None = None  # what the arm could have detected (same unit as diff)
    n: int | None = None


@dataclass
class Forest:
    rows: list[ForestRow]
    points: bool  # differences of accuracies: shown as percentage points (x100)
    thresholds: list[float] = field(default_factory=list)
    metric: str = ""
    baseline: str = ""

    @property
    def unit(self) -> str:
        return "pt" if self.points else ""

    def shown(self, value: float | None) -> str:
        if value is None:
            return "-"
        return f"{value * 100:+.1f}" if self.points else f"{value:+.3g}"


def forest(paired_rows: Sequence[dict[str, Any]], points: bool, metric: str = "", baseline: str = "") -> Forest:
    """The forest plot of a paired table's rows (compare.paired_table / sweep.paired_with_verdicts, with the claim,
    verdict words and mde this module adds)."""
    rows, marks = [], set()
    for r in paired_rows:
        rows.append(
            ForestRow(r.get("arm") or r["name"], r.get("diff"), r.get("ci_low"), r.get("ci_high"),
                      r.get("verdict") or "unchecked", r.get("verdict_words") or "", r.get("mde"), r.get("n"))
        )  # fmt: skip
        marks.update(r.get("thresholds") or [])
    return Forest(rows, points, sorted(marks), metric, baseline)


def forest_text(model: Forest, width: int = 80) -> list[str]:
    """The forest plot as lines of text at most ``width`` wide: per arm its name, difference, interval drawn on one
    shared axis (``|`` zero, ``:`` a pre-registered threshold, ``o`` the difference), and the verdict in words on the
    line below."""
    values = [v for r in model.rows for v in (r.low, r.high, r.diff) if v is not None] + [0.0, *model.thresholds]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.05 or 0.01
    lo, hi = lo - pad, hi + pad
    name_w = min(18, max([len(r.arm) for r in model.rows] + [3]))
    num_w = 22
    axis_w = max(20, width - name_w - num_w - 2)

    def col(v: float) -> int:
        return round((v - lo) / (hi - lo) * (axis_w - 1))

    lines = []
    for r in model.rows:
        cells = [" "] * axis_w
        for t in model.thresholds:
            cells[col(t)] = ":"
        cells[col(0.0)] = "|"
        if r.low is not None and r.high is not None:
            for i in range(col(r.low), col(r.high) + 1):
                cells[i] = "-" if cells[i] == " " else cells[i]
            cells[col(r.low)], cells[col(r.high)] = "[", "]"
        if r.diff is not None:
            cells[col(r.diff)] = "o"
        interval = f"[{model.shown(r.low)}, {model.shown(r.high)}]" if r.low is not None else ""
        numbers = f"{model.shown(r.diff)} {interval}".ljust(num_w)[:num_w]
        name = r.arm if len(r.arm) <= name_w else "…" + r.arm[-(name_w - 1) :]
        lines.append(f"{name.ljust(name_w)} {numbers} {''.join(cells)}"[:width])
        words = r.words + (f"; detectable >= {abs(r.mde) * (100 if model.points else 1):.2g}"
                           f"{' pt' if model.points else ''}" if r.mde is not None else "")  # fmt: skip
        indent = " " * (name_w + 1)  # the verdict in words, wrapped rather than cut at the width
        lines += textwrap.wrap(words, width, initial_indent=indent, subsequent_indent=indent + "  ")
    scale = f"{model.shown(lo)} .. {model.shown(hi)} {model.unit}".strip()
    lines.append(" " * (name_w + num_w + 2) + f"axis {scale}; | zero" + ("; : threshold" if model.thresholds else ""))
    return [line[:width].rstrip() for line in lines]
