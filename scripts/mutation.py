"""Mutation testing of grpo-lab's pure modules with mutmut: how many wrong programs the tests catch.

    python scripts/mutation.py                        # all six, one after the other
    python scripts/mutation.py rewards stats          # some of them
    python scripts/mutation.py --jobs 4 --min 90      # 4 workers; exit 1 if a module's caught share is below 90%

mutmut ([tool.mutmut] in pyproject.toml) copies the package to mutants/, makes each small wrong version of
every function of the modules (a flipped comparison, a changed constant, a dropped argument...), and runs the
unit tests that reach it: a mutant the tests fail on is caught. One module runs at a time, never two runs at
once: each takes minutes on two cores. Then this prints, per module, the mutants, how many were caught
(killed or timed out), and the names of the survivors, to read with `mutmut show NAME`; the ones judged
equivalent (no test could tell them apart from the original) are listed in EQUIVALENT below.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = ("rewards", "tasks", "filters", "criteria", "diagnostics", "stats", "sweep", "paths")
# A module whose pure part is measured alone: its functions (and SweepSpec's methods) that parse and check a sweep
# spec; the rest of sweep.py queues runs and starts processes, and is tested by running sweeps.
PURE = {
    "sweep": ("from_record", "parse_seeds", "_shown", "parse_grid_option", "parse_set_option", "_scalar", "_flag_text",
              "_value_texts", "_text", "_table", "_check_flags", "build", "check", "parse_compare", "load",
              "arm_verdict", "ǁSweepSpecǁ*", "ǁArmǁ*"),
}  # fmt: skip
# A module that is a file inside a package: its path under grpo_lab/ (without .py).
FILES = {"tasks": "tasks/arithmetic"}
CAUGHT = {"killed", "timeout", "caught by type check", "segfault"}

# Survivors read and judged equivalent: the mutant computes the same thing as the original for every input
# the program can give it. name -> why.
_ANY_TASK_TYPE = "only 'comparison' is told apart: any other default task type reads completions as arithmetic does"
_EQUAL_LENGTHS = "zip over sequences of equal length: strict or not, it pairs the same items"
_CONVERGED = "the continued fraction has converged (to 1e-15) long before: more iterations change nothing"
_NEVER_TINY = "c and d stay far from 1e-300 for the t distribution's a, b > 0: the guard against zero never acts"
_TASKS = "grpo_lab.tasks.arithmetic.x_max_samples__mutmut_"
_MEASURE_ZERO = "differs only when two floats are exactly equal, which the inputs never make"
EQUIVALENT: dict[str, str] = {
    **{
        f"grpo_lab.rewards.x_{fn}__mutmut_{i}": _ANY_TASK_TYPE
        for fn in ("answer_complete", "binary_score", "extract_answer", "is_correct", "partial_score")
        for i in (1, 2)
    },  # default task_type "arithmetic" changed
    "grpo_lab.rewards.x__scores__mutmut_4": _ANY_TASK_TYPE,
    "grpo_lab.rewards.x__scores__mutmut_5": _ANY_TASK_TYPE,
    "grpo_lab.rewards.x__completion_text__mutmut_7": "an empty conversation read as 'XXXX' instead of '': no answer "
    "is 'XXXX', so both score as a wrong answer",
    _TASKS + "11": "_plan's counts are not used here, only its spaces: 0 or 1 alike",
    _TASKS + "20": "at n = 0 every part asks for 0 problems, so the loop ends there anyway",
    _TASKS + "21": "stopping at 1 instead of 0 matters only for a range with no problem "
    "outside the suites; every operand range has some (the smallest maximum is 2)",
    **{f"{_TASKS}{i}": _EQUAL_LENGTHS for i in (26, 29, 38)},
    "grpo_lab.filters.x__show__mutmut_4": "values are floats, text or integers, and repr and str of an integer agree",
    **{f"grpo_lab.stats.x__betainc__mutmut_{i}": _NEVER_TINY for i in (54, 56, 101, 103, 110, 112)},
    **{f"grpo_lab.stats.x__betainc__mutmut_{i}": _CONVERGED for i in (63, 117, 118, 119, 120)},
    "grpo_lab.stats.x__betainc__mutmut_25": "where the continued fraction switches to the symmetric form moves; both "
    "forms give the same value (to the 1e-12 the tests check)",
    "grpo_lab.stats.x_holm__mutmut_11": "every entry of the list is assigned in the loop: its initial value is unused",
    **{f"grpo_lab.stats.x_sign_flip_p__mutmut_{i}": _EQUAL_LENGTHS for i in (23, 26, 27)},
    **{f"grpo_lab.stats.x_sign_flip_p__mutmut_{i}": _MEASURE_ZERO for i in (28, 50, 53)},
    "grpo_lab.stats.x_t_quantile__mutmut_14": _MEASURE_ZERO,
    "grpo_lab.stats.x_t_quantile__mutmut_3": "bisection from 1001 instead of 1000 ends on the same float",
    "grpo_lab.stats.x_t_quantile__mutmut_5": "bisection has reached float precision long before 200 halvings",
    **{f"grpo_lab.sweep.x_build__mutmut_{i}": _EQUAL_LENGTHS for i in (126, 129, 130, 136, 139, 140)},
    "grpo_lab.sweep.x_load__mutmut_16": "reading the whole regular file instead of its first MB and a byte: the "
    "same files are refused as too long (only the memory a huge file takes differs)",
    "grpo_lab.sweep.x_load__mutmut_18": "a file of the limit and one byte is refused whether one or two more bytes "
    "are read",
    "grpo_lab.paths.x_same_file__mutmut_1": "where one path names a file and the other none, they are not one file "
    "either way (samefile fails on the missing one; resolving gives two places)",
    "grpo_lab.paths.x_check_target__mutmut_42": "the root directory always exists, so the search for the nearest "
    "existing parent always finds one: its default is never used",
    "grpo_lab.sweep.x_load__mutmut_27": "'UTF-8' and 'utf-8' name the same codec",
    "grpo_lab.sweep.xǁSweepSpecǁto_dict__mutmut_11": "the key is popped only where it is there (its value is None): "
    "a default for a missing key is never used",
}


def patterns(module: str) -> list[str]:
    """The mutant names measured for ``module``: all of it, or its pure functions (PURE)."""
    dotted = FILES.get(module, module).replace("/", ".")
    if module not in PURE:
        return [f"grpo_lab.{dotted}.*"]
    return [f"grpo_lab.{dotted}.x{'' if name.startswith('ǁ') else '_'}{name}__mutmut_*" if not name.endswith("*")
            else f"grpo_lab.{dotted}.x{name}" for name in PURE[module]]  # fmt: skip


def statuses(module: str) -> dict[str, str]:
    from fnmatch import fnmatch

    from mutmut.stats import status_by_exit_code

    meta = ROOT / "mutants" / "grpo_lab" / f"{FILES.get(module, module)}.py.meta"
    data = json.loads(meta.read_text())
    wanted = patterns(module)
    return {name: status_by_exit_code[code] for name, code in data["exit_code_by_key"].items()
            if any(fnmatch(name, p) for p in wanted)}  # fmt: skip


def run(module: str, jobs: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the copy in mutants/ is what is imported
    subprocess.run([sys.executable, "-m", "mutmut", "run", *patterns(module), "--max-children", str(jobs)],
                   cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    return statuses(module)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=f"one of {', '.join(MODULES)} [all]")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once [2]")
    parser.add_argument("--min", type=float, default=None, help="fail when a module catches less (percent)")
    args = parser.parse_args()
    unknown = sorted(set(args.modules) - set(MODULES))
    if unknown:
        parser.error(f"not a pure module: {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    failed = False
    print(f"{'module':<12} {'mutants':>7} {'caught':>7} {'share':>7}  not caught")
    survivors = []
    for module in args.modules or MODULES:
        found = run(module, args.jobs)
        caught = sum(status in CAUGHT for status in found.values())
        share = 100 * caught / len(found) if found else 100.0
        missed = Counter(s for s in found.values() if s not in CAUGHT)
        equivalent = sum(name in EQUIVALENT for name in found)
        summary = ", ".join(f"{n} {s}" for s, n in missed.items()) + (
            f" ({equivalent} judged equivalent)" * bool(equivalent)
        )
        print(f"{module:<12} {len(found):>7} {caught:>7} {share:>6.1f}%  {summary or '-'}", flush=True)
        survivors += sorted(f"{n} ({s})" for n, s in found.items() if s not in CAUGHT and n not in EQUIVALENT)
        failed |= args.min is not None and share < args.min
    if survivors:
        print("\nnot caught and not judged equivalent (read one with `mutmut show NAME`):")
        print("\n".join(f"  {s}" for s in survivors))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
