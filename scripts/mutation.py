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
MODULES = ("rewards", "tasks", "filters", "criteria", "diagnostics", "stats")
CAUGHT = {"killed", "timeout", "caught by type check", "segfault"}

# Survivors read and judged equivalent: the mutant computes the same thing as the original for every input
# the program can give it. name -> why.
EQUIVALENT: dict[str, str] = {}


def statuses(module: str) -> dict[str, str]:
    from mutmut.stats import status_by_exit_code

    meta = ROOT / "mutants" / "grpo_lab" / f"{module}.py.meta"
    data = json.loads(meta.read_text())
    return {name: status_by_exit_code[code] for name, code in data["exit_code_by_key"].items()}


def run(module: str, jobs: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the copy in mutants/ is what is imported
    subprocess.run([sys.executable, "-m", "mutmut", "run", f"grpo_lab.{module}.*", "--max-children", str(jobs)],
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
