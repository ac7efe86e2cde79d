"""Headline numbers of a run, computed once when it ends and stored with it (compare reads only these).

Canonical keys, the names compare, --where and the journal use:

- ``reward``: final train reward (mean over the last 10% of steps); likewise ``zero_std``
  (frac_reward_zero_std), ``kl``, ``grad_norm``, ``entropy``; ``kl_last``, the last logged KL
- ``train_acc`` / ``train_acc_before``: greedy accuracy on the training problems after / before
- ``held_out`` / ``held_out_before``: accuracy on the standard suite (``suite``), or on the held-out
  problems when no suite was evaluated
- ``held_out_ops``: {operation: accuracy} on that split after training
- ``<split>_acc_<stage>`` and ``<split>_acc_<stage>:<dimension>=<group>`` for every evaluated split
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

TAIL = 0.1  # "final" curve values are means over the last 10% of steps (at least one step)
CURVE_KEYS = {"reward": "reward", "zero_std": "frac_reward_zero_std", "kl": "kl", "grad_norm": "grad_norm",
              "entropy": "entropy", "reward_std": "reward_std"}  # fmt: skip
OWN_SPLITS = ("train", "held_out")


def tail_mean(steps: Sequence[tuple[int, dict[str, float]]], key: str) -> float | None:
    values = [m[key] for _, m in steps if m.get(key) is not None]
    if not values:
        return None
    n = max(1, round(len(values) * TAIL))
    return sum(values[-n:]) / n


def summarize(steps: Sequence[tuple[int, dict[str, float]]], results: Sequence[tuple]) -> dict[str, Any]:
    """``results`` rows are (stage, split, dimension, group, correct, total)."""
    out: dict[str, Any] = {"steps": len(steps)}
    for name, key in CURVE_KEYS.items():
        out[name] = tail_mean(steps, key)
    kls = [m["kl"] for _, m in steps if m.get("kl") is not None]
    out["kl_last"] = kls[-1] if kls else None
    grads = [m["grad_norm"] for _, m in steps if m.get("grad_norm") is not None]
    out["frac_grad_norm_zero"] = sum(g == 0 for g in grads) / len(grads) if grads else None
    rewards = [m["reward"] for _, m in steps if m.get("reward") is not None]
    out["reward_max"] = max(rewards) if rewards else None
    suites: list[str] = []
    for stage, split, dimension, group, correct, total in results:
        acc = correct / total if total else None
        if dimension == "overall":
            out[f"{split}_acc_{stage}"] = acc
            out[f"{split}_n"] = total
            if split not in OWN_SPLITS and split not in suites:
                suites.append(split)
        else:
            out[f"{split}_acc_{stage}:{dimension}={group}"] = acc
    out["suite"] = suites[0] if suites else ("held_out" if "held_out_n" in out else None)
    held = out["suite"]
    out["held_out"] = out.get(f"{held}_acc_after") if held else None
    out["held_out_before"] = out.get(f"{held}_acc_before") if held else None
    out["train_acc"] = out.get("train_acc_after")
    out["train_acc_before"] = out.get("train_acc_before")
    out["held_out_ops"] = held_out_ops(out)
    return out


def held_out_ops(summary: dict[str, Any]) -> dict[str, float]:
    """Accuracy per operation on the held-out split (the suite) after training."""
    prefix = f"{summary.get('suite')}_acc_after:operation="
    return {k[len(prefix) :]: v for k, v in summary.items() if k.startswith(prefix)}
