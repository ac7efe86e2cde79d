import hashlib
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

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


def test_unknown_suite():
    with pytest.raises(GrpoLabError, match="unknown suite 'arith-v9'"):
        load_suite("arith-v9")
