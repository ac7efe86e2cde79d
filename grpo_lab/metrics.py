"""A run's headline numbers ("metrics"): one name per number, computed once when the run ends.

The same name is the store's metric row, compare's column, a ``--where`` or ``--criteria`` field, the
JSON key, and what show, diff and the journal print. Names:

- curve values, means over the last 10% of logged steps (at least one): ``final_reward`` (the train
  reward), ``zero_std`` (frac_reward_zero_std), ``kl``, ``grad_norm``, ``entropy``, ``reward_std``; and
  ``kl_last`` (the last logged KL), ``reward_max``, ``frac_grad_norm_zero``, ``steps``
- greedy accuracy after training, by evaluated set: ``train_acc`` (the run's training problems),
  ``held_out`` (the run's own held-out split: problems of the training kind, never trained on), and one
  per suite, named by the suite (``arith-v1``, ``mixed-v1``, a user suite's file name)
- ``SET[GROUP]``: accuracy on one operation of that set (``arith-v1[*]``, ``held_out[+]``)
- suffixes ``_before`` (before training) and ``_gain`` (after minus before): ``arith-v1_gain``
- ``SUITE_overlap``: how many of the run's training problems are in that suite (0 for built-in suites)

This module is the only place that builds or reads these names.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

TAIL = 0.1  # "final" curve values are means over the last 10% of steps (at least one step)
CURVE = {"final_reward": "reward", "zero_std": "frac_reward_zero_std", "kl": "kl", "grad_norm": "grad_norm",
         "entropy": "entropy", "reward_std": "reward_std"}  # fmt: skip
CURVE_EXTRA = ("kl_last", "reward_max", "frac_grad_norm_zero", "steps")
OWN_SPLITS = ("train", "held_out")
STAGES = ("before", "after")
SUFFIXES = ("before", "gain", "overlap")
GROUP_DIMENSION = "operation"  # per-group metrics are per operation (+ - * /, count, compare)

HELP = {
    "final_reward": "mean train reward over the last 10% of steps",
    "zero_std": "mean frac_reward_zero_std over the last 10% of steps",
    "kl": "mean KL over the last 10% of steps",
    "kl_last": "the last logged KL",
    "grad_norm": "mean grad norm over the last 10% of steps",
    "steps": "optimizer steps logged",
    "train_acc": "greedy accuracy on the run's training problems after training",
    "held_out": "greedy accuracy after training on the run's own held-out problems (same kind, never trained on)",
}
_NAME = re.compile(r"(?P<base>.+?)(?:\[(?P<group>[^\[\]]+)\])?(?:_(?P<suffix>before|gain|overlap))?")


@dataclass(frozen=True)
class Name:
    """A parsed accuracy metric name: which set, which group (None for overall), which suffix (None: after)."""

    split: str
    group: str | None = None
    suffix: str | None = None


def base(split: str) -> str:
    return "train_acc" if split == "train" else split


def acc(split: str, group: str | None = None, suffix: str | None = None) -> str:
    """The metric name of an accuracy: ``acc("arith-v1", "*", "gain")`` -> ``arith-v1[*]_gain``."""
    return base(split) + (f"[{group}]" if group else "") + (f"_{suffix}" if suffix else "")


def overlap(suite: str) -> str:
    return f"{suite}_overlap"


@functools.lru_cache(maxsize=4096)  # names repeat across runs: 1,000 runs' table parsed 168,000 of them (0.9 s)
def parse(name: str) -> Name | None:
    """The accuracy metric a name stands for, or None for a curve metric (cached: compare parses the same few dozen
    names for every one of 100,000 runs)."""
    if name in CURVE or name in CURVE_EXTRA:
        return None
    m = _NAME.fullmatch(name)
    if not m:
        return None
    split = "train" if m["base"] == "train_acc" else m["base"]
    if m["suffix"] == "overlap" and (m["group"] or split in OWN_SPLITS):
        return None
    return Name(split, m["group"], m["suffix"])


def suites_of(metrics: Mapping[str, float] | Iterable[str]) -> list[str]:
    """The suites a run was evaluated on (given its metrics, or their names), in the order their metrics were
    written."""
    return list(_suites_of(tuple(metrics)))


@functools.lru_cache(maxsize=1024)
def _suites_of(names: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for name in names:
        parsed = parse(name)
        if parsed and parsed.split not in OWN_SPLITS and parsed.split not in out:
            out.append(parsed.split)
    return tuple(out)


def groups_of(metrics: Mapping[str, float] | Iterable[str], split: str) -> list[str]:
    """The per-operation groups measured on a set after training, sorted."""
    found = set()
    for name in metrics:
        parsed = parse(name)
        if parsed and parsed.split == split and parsed.group and parsed.suffix is None:
            found.add(parsed.group)
    return sorted(found)


def valid_names(splits: Mapping[str, Iterable[str]]) -> list[str]:
    """Every metric name a run evaluated on ``splits`` ({set: its operation groups}) can have."""
    names = [*CURVE, *CURVE_EXTRA]
    for split, groups in splits.items():
        for group in (None, *sorted(groups)):
            names += [acc(split, group), acc(split, group, "before"), acc(split, group, "gain")]
        if split not in OWN_SPLITS:
            names.append(overlap(split))
    return names


def pct(value: float | None) -> str:
    """An accuracy (0-1) as people read it, the same everywhere: ``0.455`` -> ``45.5%``; None -> ``-``."""
    return "-" if value is None else f"{100 * value:.1f}%"


def _tail_mean(steps: Sequence[tuple[int, Mapping[str, float]]], key: str) -> float | None:
    values = [m[key] for _, m in steps if m.get(key) is not None and math.isfinite(m[key])]
    if not values:
        return None
    n = max(1, round(len(values) * TAIL))
    return sum(values[-n:]) / n


def compute(
    steps: Sequence[tuple[int, Mapping[str, float]]],
    results: Iterable[tuple[str, str, str, str, int, int]],
    overlaps: Mapping[str, int] | None = None,
) -> dict[str, float]:
    """Every metric of a run. ``results`` rows are (stage, split, dimension, group, correct, total);
    ``overlaps`` maps each evaluated suite to how many training problems it holds. Missing values are left out."""
    out: dict[str, float | None] = {"steps": len(steps)} if steps else {}
    for name, key in CURVE.items():
        out[name] = _tail_mean(steps, key)
    kls = [m["kl"] for _, m in steps if m.get("kl") is not None and math.isfinite(m["kl"])]
    out["kl_last"] = kls[-1] if kls else None
    grads = [m["grad_norm"] for _, m in steps if m.get("grad_norm") is not None]
    out["frac_grad_norm_zero"] = sum(g == 0 for g in grads) / len(grads) if grads else None
    rewards = [m["reward"] for _, m in steps if m.get("reward") is not None]
    out["reward_max"] = max(rewards) if rewards else None
    accuracy: dict[tuple[str, str | None], dict[str, float]] = {}
    for stage, split, dimension, group, correct, total in results:
        if dimension not in ("overall", GROUP_DIMENSION) or not total:
            continue
        key = (split, group if dimension == GROUP_DIMENSION else None)
        accuracy.setdefault(key, {})[stage] = correct / total
    for (split, group), by_stage in sorted(accuracy.items(), key=lambda kv: _split_rank(kv[0])):
        if "after" in by_stage:
            out[acc(split, group)] = by_stage["after"]
        if "before" in by_stage:
            out[acc(split, group, "before")] = by_stage["before"]
        if "after" in by_stage and "before" in by_stage:
            out[acc(split, group, "gain")] = by_stage["after"] - by_stage["before"]
    for suite, count in (overlaps or {}).items():
        out[overlap(suite)] = count
    return {k: v for k, v in out.items() if v is not None and math.isfinite(v)}  # a NaN is not a number to compare


def _split_rank(key: tuple[str, str | None]) -> tuple:
    split, group = key
    own = OWN_SPLITS.index(split) if split in OWN_SPLITS else len(OWN_SPLITS)
    return (own, group is not None, group or "")
