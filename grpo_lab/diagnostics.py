"""The seed's monitoring rules and "Common Issues" as code, each with the seed's advice.

Pure functions over a run's configuration and metrics (metrics.py), so compare, show and the
journal all say the same thing about a run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import metrics as metric_names


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str  # warning | info
    message: str  # what was seen, with the seed's advice


@dataclass(frozen=True)
class Rule:
    code: str
    severity: str
    check: Callable[[dict[str, Any], dict[str, Any]], str | None]  # (config, metrics) -> message or None


def _num(d: dict[str, Any], key: str) -> float | None:
    value = d.get(key)
    return float(value) if isinstance(value, int | float) else None


def _zero_std(config, values):
    v = _num(values, "zero_std")
    if v is not None and v > 0.5:
        return (
            f"frac_reward_zero_std {v:.2f} > 0.5: most groups have identical rewards; "
            "raise temperature or num_generations"
        )
    return None


def _reward_stuck(config, values):
    top = _num(values, "reward_max")
    if top is not None and values.get("steps") and top <= -1.0 + 1e-9:
        return "reward stuck at -1.0: the model never got an answer right; check beta > 0 and a high enough temperature"
    return None


def _grad_zero(config, values):
    v = _num(values, "frac_grad_norm_zero")
    if v is not None and v > 0.5:
        return (
            f"grad_norm zero on {v:.0%} of steps: all rewards identical, nothing to learn; "
            "raise temperature or generations"
        )
    return None


def _beta_zero(config, values):
    if _num(config, "beta") == 0:
        return "beta = 0: without a KL penalty arithmetic training collapses; use beta 0.1"
    return None


def _few_generations(config, values):
    n = _num(config, "num_generations")
    if n is not None and n < 8:
        return f"num_generations {int(n)} < 8: reward std within a group goes to zero; use 8-16"
    return None


def _kl_range(config, values):
    kl = _num(values, "kl_last")
    if kl is not None and _num(config, "beta") and not 0.5 <= kl <= 1.0:
        return f"final KL {kl:.3g} outside the seed's 0.5-1.0 range (informational)"
    return None


def _overfitting(config, values):
    # Held-out problems of the training set's own kind: a harder or different suite would count
    # difficulty, not memorisation (a mixed run's train set holds easy comparisons arith-v1 lacks).
    train = _num(values, "train_acc")
    held = _num(values, "held_out")
    if train is not None and held is not None and round(train - held, 9) > 0.30:
        return (
            f"train accuracy {train:.0%} vs {held:.0%} on held-out problems of the same kind: "
            f"a {100 * (train - held):.0f}-point gap is overfitting; use more unique problems"
        )
    return None


def _contaminated(config, values):
    found = []
    for suite in metric_names.suites_of(values):
        count = _num(values, metric_names.overlap(suite))
        if count:
            found.append(f"{int(count)} in {suite}")
    if found:
        return (
            f"training problems that are also evaluation problems ({', '.join(found)}): those suite scores "
            "are not held-out; evaluate on a suite disjoint from training"
        )
    return None


# The metrics the rules read (with SUITE_overlap of every suite), so that compare fetches no others.
METRICS = ("zero_std", "reward_max", "steps", "frac_grad_norm_zero", "kl_last", "train_acc", "held_out")

RULES = (
    Rule("zero-std", "warning", _zero_std),
    Rule("reward-stuck", "warning", _reward_stuck),
    Rule("zero-grad", "warning", _grad_zero),
    Rule("no-kl", "warning", _beta_zero),
    Rule("few-generations", "warning", _few_generations),
    Rule("kl-range", "info", _kl_range),
    Rule("overfitting", "warning", _overfitting),
    Rule("contaminated", "warning", _contaminated),
)


def diagnose(config: dict[str, Any], values: dict[str, Any]) -> list[Finding]:
    findings = []
    for rule in RULES:
        message = rule.check(config, values)
        if message:
            findings.append(Finding(rule.code, rule.severity, message))
    return findings
