"""Generate the built-in evaluation suites (grpo_lab/suites/*.jsonl), deterministically.

A released suite never changes: grpo_lab/suites.py pins each file's SHA-256, and the tests check
both the pin and that this script reproduces the files byte for byte. A changed suite gets a new name.

    python scripts/build_suites.py [--check]
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import sys
from pathlib import Path

from grpo_lab import suites, tasks


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


def arith_tier(p: tasks.Problem) -> str:
    """arith-v2's tiers, by what makes a sum or product hard: the zero rule, carries, signs, the product's size.
    very_easy: a * 0 or 0 * b; easy: a + b without a carry; medium: a + b with a carry, a - b >= 0; hard: a - b < 0,
    a * b < 100; very_hard: a * b >= 100 (three digits)."""
    a, op, b = p.prompt.removeprefix("Calculate: ").removesuffix(" = ").split(" ")
    a, b, result = int(a), int(b), int(p.answer)
    if op == "*":
        return "very_easy" if 0 in (a, b) else "hard" if result < 100 else "very_hard"
    if op == "+":
        return "easy" if a % 10 + b % 10 < 10 else "medium"
    return "medium" if result >= 0 else "hard"


def arith_v2() -> list[tasks.Problem]:
    """500 problems drawn uniformly, without replacement, from the space the default arithmetic range trains on
    (operands 0-20, + - *: 1323 problems), then labelled with a tier by operation and result."""
    rng = random.Random("arith-v2")
    space = [tasks.arithmetic_problem(a, op, b) for op in tasks.OPS for a in range(21) for b in range(21)]
    drawn = rng.sample(space, 500)
    labelled = [dataclasses.replace(p, difficulty=arith_tier(p)) for p in drawn]
    return sorted(labelled, key=lambda p: suites.tier_rank(p.difficulty))  # stable: draw order within a tier


def count_tier(p: tasks.Problem) -> str:
    """mixed-v2's counting tiers: easy, 1-5 words; medium, 6-10."""
    return "easy" if int(p.answer) <= 5 else "medium"


def compare_tier(p: tasks.Problem) -> str:
    """mixed-v2's comparison tiers: very_easy, operands 3 or more apart; hard, at most 2 apart (equal included)."""
    a, b = (int(n) for n in re.findall(r"\d+", p.prompt))
    return "very_easy" if abs(a - b) > 2 else "hard"


def mixed_v2() -> list[tasks.Problem]:
    """50 counting problems drawn uniformly from the 200 a mixed run trains on (20 words x 1-10) and 50 comparison
    problems from its 441 (operands 0-20): equal shares, as a mixed training set has them."""
    rng = random.Random("mixed-v2")
    counting = [tasks.counting_problem(w, k) for w in tasks.COUNT_WORDS for k in range(1, 11)]
    comparison = [tasks.comparison_problem(a, b) for a in range(21) for b in range(21)]
    out = []
    for space, n, tier in ((counting, 50, count_tier), (comparison, 50, compare_tier)):
        drawn = [dataclasses.replace(p, difficulty=tier(p)) for p in rng.sample(space, n)]
        out += sorted(drawn, key=lambda p: suites.tier_rank(p.difficulty))
    return out


BUILDERS = {"arith-v1": arith_v1, "mixed-v1": mixed_v1, "arith-v2": arith_v2, "mixed-v2": mixed_v2}


def render(problems: list[tasks.Problem]) -> str:
    return "".join(json.dumps(p.row(), sort_keys=True) + "\n" for p in problems)


def main() -> None:
    check = "--check" in sys.argv
    stale = []
    for name, build in BUILDERS.items():
        path = Path(suites.SUITES_DIR) / f"{name}.jsonl"
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
