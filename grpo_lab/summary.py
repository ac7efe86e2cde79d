"""Headline numbers of a run, computed once when it ends and stored with it (compare reads only these)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

TAIL = 0.1  # "final" curve values are means over the last 10% of steps (at least one step)


def tail_mean(steps: Sequence[tuple[int, dict[str, float]]], key: str) -> float | None:
    values = [m[key] for _, m in steps if m.get(key) is not None]
    if not values:
        return None
    n = max(1, round(len(values) * TAIL))
    return sum(values[-n:]) / n


def summarize(steps: Sequence[tuple[int, dict[str, float]]], results: Sequence[tuple]) -> dict[str, Any]:
    """``results`` rows are (stage, split, dimension, group, correct, total)."""
    out: dict[str, Any] = {"steps": len(steps)}
    for key in ("reward", "reward_std", "frac_reward_zero_std", "kl", "grad_norm", "entropy"):
        out[f"final_{key}"] = tail_mean(steps, key)
    grads = [m["grad_norm"] for _, m in steps if m.get("grad_norm") is not None]
    out["frac_grad_norm_zero"] = sum(g == 0 for g in grads) / len(grads) if grads else None
    rewards = [m["reward"] for _, m in steps if m.get("reward") is not None]
    out["reward_min"], out["reward_max"] = (min(rewards), max(rewards)) if rewards else (None, None)
    for stage, split, dimension, group, correct, total in results:
        acc = correct / total if total else None
        if dimension == "overall":
            out[f"{split}_acc_{stage}"] = acc
            out[f"{split}_n"] = total
        else:
            out[f"{split}_acc_{stage}:{dimension}={group}"] = acc
    return out
