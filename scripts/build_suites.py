"""Generate the built-in evaluation suites (grpo_lab/suites/*.jsonl), deterministically.

A released suite never changes: grpo_lab/suites.py pins each file's SHA-256, and the tests check
both the pin and that this script reproduces the files byte for byte. A changed suite gets a new name.

    python scripts/build_suites.py [--check]
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from grpo_lab import tasks
from grpo_lab.suites import SUITES_DIR


def distinct(make, n: int, rng: random.Random, seen: set[str]) -> list[tasks.Problem]:
    out: list[tasks.Problem] = []
    while len(out) < n:
        p = make(rng)
        if p.prompt not in seen:
            seen.add(p.prompt)
            out.append(p)
    return out


def arithmetic(lo: int, hi: int, ops: str, difficulty: str):
    def make(rng: random.Random) -> tasks.Problem:
        op = rng.choice(ops)
        if op == "/":  # exact division with a quotient of at least 2 (x / x = 1 tests nothing)
            b = rng.randint(max(lo, 1), hi // 2)
            return tasks.arithmetic_problem(b * rng.randint(2, hi // b), op, b, difficulty)
        return tasks.arithmetic_problem(rng.randint(lo, hi), op, rng.randint(lo, hi), difficulty)

    return make


def arith_v1() -> list[tasks.Problem]:
    rng, seen = random.Random("arith-v1"), set()
    tiers = [
        ("very_easy", 30, 0, 5, "+"),
        ("easy", 40, 0, 10, "+-*"),
        ("medium", 50, 0, 20, "+-*"),
        ("hard", 40, 10, 50, "+-*"),
        ("very_hard", 40, 20, 100, "+-*/"),
    ]
    return [p for name, n, lo, hi, ops in tiers for p in distinct(arithmetic(lo, hi, ops, name), n, rng, seen)]


def mixed_v1() -> list[tasks.Problem]:
    rng, seen = random.Random("mixed-v1"), set()

    def counting(lo: int, hi: int, difficulty: str):
        return lambda r: tasks.counting_problem(r.choice(tasks.COUNT_WORDS), r.randint(lo, hi), difficulty)

    def comparison(lo: int, hi: int, difficulty: str):
        return lambda r: tasks.comparison_problem(r.randint(lo, hi), r.randint(lo, hi), difficulty)

    return (
        distinct(counting(1, 5, "easy"), 25, rng, seen)
        + distinct(counting(6, 10, "hard"), 25, rng, seen)
        + distinct(comparison(0, 20, "easy"), 25, rng, seen)
        + distinct(comparison(20, 100, "hard"), 25, rng, seen)
    )


BUILDERS = {"arith-v1": arith_v1, "mixed-v1": mixed_v1}


def render(problems: list[tasks.Problem]) -> str:
    return "".join(json.dumps(p.row(), sort_keys=True) + "\n" for p in problems)


def main() -> None:
    check = "--check" in sys.argv
    stale = []
    for name, build in BUILDERS.items():
        path = Path(SUITES_DIR) / f"{name}.jsonl"
        text = render(build())
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
            print(f"wrote {path} ({text.count(chr(10))} problems)")
    if stale:
        sys.exit(f"out of date: {', '.join(stale)}")


if __name__ == "__main__":
    main()
