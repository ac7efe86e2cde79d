"""Built-in evaluation suites: fixed problem sets, versioned, shipped as JSONL package data.

Numbers from different runs are comparable only on the same problems, so a released suite never
changes: its SHA-256 is pinned here and checked on load. A changed suite gets a new name.
``scripts/build_suites.py`` regenerates the files deterministically.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .errors import GrpoLabError
from .tasks import Problem

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
    )
}
NONE = "none"
DIFFICULTY_TIERS = ("very_easy", "easy", "medium", "hard", "very_hard")


def tier_rank(group: str) -> tuple[int, str]:
    """Sort key that puts difficulty tiers easy to hard (other groups after them, by name)."""
    return (DIFFICULTY_TIERS.index(group) if group in DIFFICULTY_TIERS else len(DIFFICULTY_TIERS), group)


def suite_names() -> list[str]:
    return list(SUITES)


def load_suite(name: str) -> list[Problem]:
    if name not in SUITES:
        raise GrpoLabError(f"unknown suite {name!r}; `grpo-lab suites` lists them: {', '.join(SUITES)}")
    data = (SUITES_DIR / f"{name}.jsonl").read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SUITES[name].sha256:
        raise GrpoLabError(f"suite {name} has changed on disk (sha256 {digest[:12]}); reinstall grpo-lab")
    return [Problem(**json.loads(line)) for line in data.decode().splitlines()]


def describe(name: str) -> dict[str, object]:
    problems = load_suite(name)
    return {
        "name": name,
        "description": SUITES[name].description,
        "problems": len(problems),
        "groups": dict(Counter(p.difficulty for p in problems)),
        "sha256": SUITES[name].sha256,
    }
