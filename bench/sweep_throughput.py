"""Sweep throughput: the same 8 short runs through `grpo-lab sweep` serially and with --parallel 2.

Each repeat records a fresh sweep (its own store in a temporary folder) of 2 arms x 4 seeds of tiny-arith, a few
steps each, and times the whole command; serial and parallel alternate, and the script prints min / median / max
of each and the ratio of the medians (target >= 1.6x on 2 cores). Run it alone on a quiet machine.

    python bench/sweep_throughput.py [--repeats 5] [--steps 6]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SWEEP = """
name = "throughput"
hypothesis = "throughput"
seeds = "1-4"

[base]
model_name = "tiny-arith"
n_samples = 64
batch_size = 32
num_generations = 8
eval_samples = 50
max_steps = {steps}

[grid]
beta = [0, 0.1]
"""


def once(parallel: int, steps: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "s.toml"
        spec.write_text(SWEEP.format(steps=steps))
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "grpo_lab", "sweep", str(spec), "--parallel", str(parallel), "--wandb", "disabled",
             "--db", str(Path(folder) / "s.db")],
            cwd=folder, capture_output=True, text=True,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"sweep --parallel {parallel} failed:\n{proc.stdout}\n{proc.stderr}")
        return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=6)
    args = ap.parse_args()
    times: dict[int, list[float]] = {1: [], 2: []}
    for i in range(args.repeats):
        for parallel in (1, 2) if i % 2 == 0 else (2, 1):
            times[parallel].append(once(parallel, args.steps))
            print(f"repeat {i + 1} --parallel {parallel}: {times[parallel][-1]:.1f} s", flush=True)
    for parallel, ts in times.items():
        print(f"--parallel {parallel}: min {min(ts):.1f} / median {statistics.median(ts):.1f} / max {max(ts):.1f} s")
    ratio = statistics.median(times[1]) / statistics.median(times[2])
    print(f"throughput, --parallel 2 over serial: {ratio:.2f}x (median of {args.repeats}; target >= 1.6x)")


if __name__ == "__main__":
    main()
