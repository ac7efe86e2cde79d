"""The seed's monitoring rules and "Common Issues" as code, each with the seed's advice.

Pure functions over a run's configuration and stored summary (summary.py), so compare, show and
the journal all say the same thing about a run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# The summary keys the rules read (compare asks the store for exactly these).
SUMMARY_KEYS = (
    "zero_std",
    "reward_max",
    "steps",
    "frac_grad_norm_zero",
    "kl_last",
    "train_acc",
    "held_out",
    "held_out_acc_after",
)


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str  # warning | info
    message: str  # what was seen, with the seed's advice


@dataclass(frozen=True)
class Rule:
    code: str
    severity: str
    check: Callable[[dict[str, Any], dict[str, Any]], str | None]  # (config, summary) -> message or None


def _num(d: dict[str, Any], key: str) -> float | None:
    value = d.get(key)
    return float(value) if isinstance(value, int | float) else None


def _zero_std(config, summary):
    v = _num(summary, "zero_std")
    if v is not None and v > 0.5:
        return (
            f"frac_reward_zero_std {v:.2f} > 0.5: most groups have identical rewards; "
            "raise temperature or num_generations"
        )
    return None


def _reward_stuck(config, summary):
    top = _num(summary, "reward_max")
    if top is not None and summary.get("steps") and top <= -1.0 + 1e-9:
        return "reward stuck at -1.0: the model never got an answer right; check beta > 0 and a high enough temperature"
    return None


def _grad_zero(config, summary):
    v = _num(summary, "frac_grad_norm_zero")
    if v is not None and v > 0.5:
        return (
            f"grad_norm zero on {v:.0%} of steps: all rewards identical, nothing to learn; "
            "raise temperature or generations"
        )
    return None


def _beta_zero(config, summary):
    if _num(config, "beta") == 0:
        return "beta = 0: without a KL penalty arithmetic training collapses; use beta 0.1"
    return None


def _few_generations(config, summary):
    n = _num(config, "num_generations")
    if n is not None and n < 8:
        return f"num_generations {int(n)} < 8: reward std within a group goes to zero; use 8-16"
    return None


def _kl_range(config, summary):
    kl = _num(summary, "kl_last")
    if kl is not None and _num(config, "beta") and not 0.5 <= kl <= 1.0:
        return f"final KL {kl:.3g} outside the seed's 0.5-1.0 range (informational)"
    return None


def _overfitting(config, summary):
    # Held-out problems of the training set's own kind: a harder or different suite would count
    # difficulty, not memorisation (a mixed run's train set holds easy comparisons arith-v1 lacks).
    train = _num(summary, "train_acc")
    held = _num(summary, "held_out_acc_after")
    held = _num(summary, "held_out") if held is None else held
    if train is not None and held is not None and train - held > 0.30:
        return (
            f"train accuracy {train:.0%} vs {held:.0%} on held-out problems of the same kind: "
            f"a {100 * (train - held):.0f}-point gap is overfitting; use more unique problems"
        )
    return None


RULES = (
    Rule("zero-std", "warning", _zero_std),
    Rule("reward-stuck", "warning", _reward_stuck),
    Rule("zero-grad", "warning", _grad_zero),
    Rule("no-kl", "warning", _beta_zero),
    Rule("few-generations", "warning", _few_generations),
    Rule("kl-range", "info", _kl_range),
    Rule("overfitting", "warning", _overfitting),
)


def diagnose(config: dict[str, Any], summary: dict[str, Any]) -> list[Finding]:
    findings = []
    for rule in RULES:
        message = rule.check(config, summary)
        if message:
            findings.append(Finding(rule.code, rule.severity, message))
    return findings
