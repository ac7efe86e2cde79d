"""Evaluation suites: fixed problem sets, versioned, shipped as JSONL package data.

Numbers from different runs are comparable only on the same problems, so a released suite never
changes: its SHA-256 is pinned here and checked on load. A changed suite gets a new name.
``scripts/build_suites.py`` regenerates the files deterministically.

Built-in suites are held out by construction: tasks.py never puts one of their problems into a
training set or a run's own held-out split (``reserved_prompts``: the v1 suites, unless a set of suites is
named). A user's own suite (``--eval_suite PATH.jsonl``, one problem per line in the same format) has no such
guarantee; runs count how many of their training problems it contains instead.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path

from . import paths
from .errors import GrpoLabError
from .tasks import Problem
from .text import check_text

SUITES_DIR = Path(__file__).parent / "suites"


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    sha256: str


SUITES = {
    s.name: s
    for s in (
        Suite(
            "arith-v1",
            "200 arithmetic problems in five tiers: very_easy (+, 0-5), easy (+-*, 0-10), medium (+-*, 0-20), "
            "hard (+-*, 10-50), very_hard (+-* and exact /, 20-100)",
            "df0b5831b4e3ddc3cb59aa3e898e424d8e3e31855d7929fa6da302bfa90c32ce",
        ),
        Suite(
            "mixed-v1",
            "100 counting (1-5, 6-10 words) and comparison (0-20, 20-100) problems",
            "cb446d730d388e2b8ad7f4e7b6fd72ca7d802d89c71a4dbfdae044ec2c465938",
        ),
        Suite(
            "arith-v2",
            "500 arithmetic problems drawn uniformly from what the default range trains on (+ - * on 0-20), in five "
            "tiers: very_easy (a * 0, 0 * b), easy (+ without a carry), medium (+ with a carry, - with a result >= "
            "0), hard (- below 0, * below 100), very_hard (* of 100 or more)",
            "768d7b40836fe9d0173f33e57b6542574adc640f1771a3253f817ac8cc256d93",
        ),
        Suite(
            "mixed-v2",
            "100 problems drawn uniformly from what mixed runs train on: 50 counting (easy 1-5 words, medium 6-10) and "
            "50 comparison (0-20; very_easy 3 or more apart, hard at most 2 apart)",
            "1b5fbe99ef3ec78f90a55c729830a3dd0c5962b385a7ac0a76645cd9ef8c7156",
        ),
    )
}
# Which suites training sets are drawn without: every run before the v2 suites reserved the v1 ones (and still does
# by default, so that its training set stays what it was); the v2 testbed (and tiny-arith-2) reserves the v2 ones.
V1_SUITES = ("arith-v1", "mixed-v1")
V2_SUITES = ("arith-v2", "mixed-v2")
V1 = V1_SUITES  # what every run recorded before --reserve existed held out of its training sets
NONE = "none"
DIFFICULTY_TIERS = ("very_easy", "easy", "medium", "hard", "very_hard")


def tier_rank(group: str) -> tuple[int, str]:
    """Sort key that puts difficulty tiers easy to hard (other groups after them, by name)."""
    return (DIFFICULTY_TIERS.index(group) if group in DIFFICULTY_TIERS else len(DIFFICULTY_TIERS), group)


def suite_names() -> list[str]:
    return list(SUITES)


def is_user_suite(name_or_path: str) -> bool:
    """A path to a JSONL file rather than a built-in name."""
    return name_or_path not in SUITES and name_or_path.endswith(".jsonl")


def suite_name(name_or_path: str) -> str:
    """The name results are recorded under: a built-in's own, or a user suite's file name without .jsonl."""
    if not is_user_suite(name_or_path):
        return name_or_path
    name = Path(name_or_path).name.removesuffix(".jsonl")
    if name in SUITES or name in ("train", "held_out"):
        raise GrpoLabError(f"suite file {name_or_path}: its name {name!r} is taken; rename the file")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]*", name) or re.search(r"_(before|gain|overlap)$", name):
        raise GrpoLabError(
            f"suite file {name_or_path}: name it with letters, digits, '.' and '-' (the name becomes a column)"
        )
    return name


def load_suite(name: str) -> list[Problem]:
    if is_user_suite(name):
        return _load_user_suite(Path(name))
    if name not in SUITES:
        raise GrpoLabError(
            f"unknown suite {name!r}; `grpo-lab suites` lists the built-in ones ({', '.join(SUITES)}), "
            "or give a path to a .jsonl file"
        )
    data = (SUITES_DIR / f"{name}.jsonl").read_bytes()
    import hashlib  # here: listing suites needs no checksum

    digest = hashlib.sha256(data).hexdigest()
    if digest != SUITES[name].sha256:
        raise GrpoLabError(f"suite {name} has changed on disk (sha256 {digest[:12]}); reinstall grpo-lab")
    return [Problem(**json.loads(line)) for line in data.decode().splitlines()]


SUITE_FILE_MAX = 256 << 20  # bytes: what a suite of a million problems takes; more is not a suite
_FIELDS = {f.name for f in fields(Problem)}
_REQUIRED = ("prompt", "answer", "task_type", "operation")


def _load_user_suite(path: Path) -> list[Problem]:
    """A suite file: one JSON object per line with prompt, answer, task_type, operation (and difficulty)."""
    if not paths.is_file(path):  # never read a device or a pipe (/dev/zero.jsonl would never end)
        what = "is not a regular file" if paths.exists(path) else "does not exist"
        raise GrpoLabError(f"suite file {path} {what}; give a .jsonl file, one problem per line")
    size = path.stat().st_size
    if size > SUITE_FILE_MAX:
        raise GrpoLabError(f"suite file {path} is {size / 2**30:.1f} GiB; a suite file is at most "
                           f"{SUITE_FILE_MAX >> 20} MiB (a million problems)")  # fmt: skip
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GrpoLabError(f"cannot read suite file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    problems, seen = [], set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise GrpoLabError(f"suite file {path} line {n} is not JSON; one problem per line, as JSON") from None
        if not isinstance(row, dict) or any(not isinstance(row.get(k), str) or not row[k] for k in _REQUIRED):
            raise GrpoLabError(f"suite file {path} line {n} needs the text fields {', '.join(_REQUIRED)}")
        if set(row) - _FIELDS or not isinstance(row.get("difficulty", ""), str):
            raise GrpoLabError(f"suite file {path} line {n}: unknown fields {', '.join(sorted(set(row) - _FIELDS))}")
        for key in (*_REQUIRED, "difficulty"):
            if key in row:
                check_text(f"suite file {path} line {n}: {key}", row[key], one_line=key != "prompt")
        if row["prompt"] in seen:
            raise GrpoLabError(f"suite file {path} line {n} repeats a prompt; a suite holds each problem once")
        seen.add(row["prompt"])
        problems.append(Problem(**row))
    if not problems:
        raise GrpoLabError(f"suite file {path} holds no problems")
    return problems


def reserved_prompts(names: Iterable[str] = V1_SUITES) -> frozenset[str]:
    """The prompts of the built-in suites ``names`` (by default the v1 suites, as every run before the v2 suites
    reserved): the problems training never uses."""
    names = tuple(names)
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        raise GrpoLabError(f"cannot reserve {', '.join(map(repr, unknown))}: only built-in suites are held out of "
                           f"training ({', '.join(SUITES)})")  # fmt: skip
    return _reserved(tuple(sorted(set(names))))


@cache
def _reserved(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(p.prompt for name in names for p in load_suite(name))


def describe(name: str) -> dict[str, object]:
    problems = load_suite(name)
    return {
        "name": name,
        "description": SUITES[name].description,
        "problems": len(problems),
        "groups": dict(sorted(Counter(p.difficulty for p in problems).items(), key=lambda kv: tier_rank(kv[0]))),
        "sha256": SUITES[name].sha256,
    }
