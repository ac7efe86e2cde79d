import hashlib
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from grpo_lab import suites, tasks
from grpo_lab.errors import GrpoLabError
from grpo_lab.suites import SUITES, SUITES_DIR, load_suite
from grpo_lab.tasks import compute

ROOT = Path(__file__).resolve().parent.parent


def test_released_suites_never_change():
    for name, suite in SUITES.items():
        assert hashlib.sha256((SUITES_DIR / f"{name}.jsonl").read_bytes()).hexdigest() == suite.sha256, name


def test_the_build_script_reproduces_the_files_exactly():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_suites.py"), "--check"], capture_output=True)
    assert proc.returncode == 0, proc.stderr


def test_arith_v1_tiers():
    problems = load_suite("arith-v1")
    assert len(problems) == 200 and len({p.prompt for p in problems}) == 200
    assert Counter(p.difficulty for p in problems) == {"very_easy": 30, "easy": 40, "medium": 50, "hard": 40,
                                                      "very_hard": 40}  # fmt: skip
    ranges = {"very_easy": (0, 5), "easy": (0, 10), "medium": (0, 20), "hard": (10, 50), "very_hard": (20, 100)}
    for p in problems:
        a, op, b = p.prompt.removeprefix("Calculate: ").removesuffix(" = ").split(" ")
        lo, hi = ranges[p.difficulty]
        assert lo <= int(a) <= hi and lo <= int(b) <= hi, p
        assert p.answer == str(compute(int(a), op, int(b))) and p.operation == op
        assert op == "+" if p.difficulty == "very_easy" else op in ("+-*" if p.difficulty != "very_hard" else "+-*/")
    assert {p.operation for p in problems if p.difficulty == "very_hard"} == {"+", "-", "*", "/"}


def test_mixed_v1_has_counting_and_comparison():
    problems = load_suite("mixed-v1")
    assert Counter(p.task_type for p in problems) == {"counting": 50, "comparison": 50}
    assert len({p.prompt for p in problems}) == 100


def test_arith_v2_is_a_uniform_draw_from_the_default_training_space_in_tiers_by_carry_sign_and_size():
    problems = load_suite("arith-v2")
    assert len(problems) == 500 and len({p.prompt for p in problems}) == 500
    counts = Counter(p.difficulty for p in problems)
    assert counts == {"very_easy": 16, "easy": 100, "medium": 160, "hard": 156, "very_hard": 68}
    assert Counter(p.operation for p in problems) == {"+": 164, "-": 170, "*": 166}  # about a third each
    for p in problems:
        a, op, b = p.prompt.removeprefix("Calculate: ").removesuffix(" = ").split(" ")
        a, b, result = int(a), int(b), compute(int(a), op, int(b))
        assert 0 <= a <= 20 and 0 <= b <= 20 and p.answer == str(result) and p.operation == op, p
        expected = {
            "*": "very_easy" if 0 in (a, b) else "hard" if result < 100 else "very_hard",
            "+": "easy" if a % 10 + b % 10 < 10 else "medium",
            "-": "medium" if result >= 0 else "hard",
        }[op]
        assert p.difficulty == expected, p
    assert [suites.tier_rank(p.difficulty) for p in problems] == sorted(suites.tier_rank(p.difficulty)
                                                                        for p in problems)  # fmt: skip


def test_mixed_v2_is_a_uniform_draw_from_the_mixed_training_spaces():
    problems = load_suite("mixed-v2")
    assert len({p.prompt for p in problems}) == 100
    assert Counter((p.task_type, p.difficulty) for p in problems) == {
        ("counting", "easy"): 27, ("counting", "medium"): 23, ("comparison", "very_easy"): 39,
        ("comparison", "hard"): 11}  # fmt: skip
    counting = {tasks.count_prompt(w, k) for w in tasks.COUNT_WORDS for k in range(1, 11)}
    comparison = {tasks.compare_prompt(a, b) for a in range(21) for b in range(21)}
    for p in problems:
        if p.task_type == "counting":
            assert p.prompt in counting and p.difficulty == ("easy" if int(p.answer) <= 5 else "medium")
        else:
            a, b = map(int, re.findall(r"\d+", p.prompt))
            assert p.prompt in comparison and p.answer == ("yes" if a > b else "no")
            assert p.difficulty == ("very_easy" if abs(a - b) > 2 else "hard")


def test_reserved_prompts_are_the_v1_suites_unless_a_set_is_named():
    v1 = suites.reserved_prompts()
    assert v1 == suites.reserved_prompts(("arith-v1", "mixed-v1")) == suites.reserved_prompts(["mixed-v1", "arith-v1"])
    assert len(v1) == 300
    v2 = suites.reserved_prompts(suites.V2_SUITES)
    assert v2 == {p.prompt for name in ("arith-v2", "mixed-v2") for p in load_suite(name)} and len(v2) == 600
    assert suites.reserved_prompts(("arith-v2",)) < v2 and suites.reserved_prompts(()) == frozenset()
    assert len(suites.reserved_prompts((*suites.V1_SUITES, *suites.V2_SUITES))) == len(v1 | v2)
    with pytest.raises(GrpoLabError, match=r"cannot reserve 'arith-v9': only built-in suites are held out"):
        suites.reserved_prompts(("arith-v1", "arith-v9"))


def test_unknown_suite():
    with pytest.raises(GrpoLabError, match="unknown suite 'arith-v9'"):
        load_suite("arith-v9")
