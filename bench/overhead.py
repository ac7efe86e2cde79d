"""Does recording slow training down? Bare TRL vs `grpo-lab run`, alternating A B A B in one process tree.

    python bench/overhead.py [--pairs 5] [--steps 30]

Both train the tiny model with the identical configuration (256 problems, batch 64, 8 generations,
one torch thread) and time the same span: trainer construction, training, saving the model.
grpo-lab's figure is the train_seconds it recorded in its store (with the listener, the batched
store writes, the heartbeat thread and the progress bar all on). Prints the median ratio B/A.
Target: <= 1.05.
"""

import argparse
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def bare(steps: int, work: Path) -> float:
    out = subprocess.run([sys.executable, str(HERE / "bare_trl.py"), str(steps), str(work / "bare")],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return float(re.search(r"TRAIN_SECONDS (\S+)", out).group(1))


def grpo_lab(steps: int, work: Path, i: int) -> float:
    db = work / "bench.db"
    subprocess.run(
        [sys.executable, "-c", "from grpo_lab.cli import main; main()", "run", "--model_name", "tiny-arith",
         "--n_samples", "256", "--batch_size", "64", "--num_generations", "8", "--learning_rate", "5e-5",
         "--max_steps", str(steps), "--eval_samples", "0", "--threads", "1", "--wandb", "disabled",
         "--db", str(db), "--output_dir", str(work / f"lab{i}"), "--hypothesis", "overhead benchmark"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    conn = sqlite3.connect(db)
    (seconds,) = conn.execute("SELECT train_seconds FROM run ORDER BY started_at DESC, rowid DESC LIMIT 1").fetchone()
    conn.close()
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")
    a_times, b_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for i in range(args.pairs):
            a_times.append(bare(args.steps, work))
            b_times.append(grpo_lab(args.steps, work, i))
            print(f"pair {i + 1}: bare TRL {a_times[-1]:.2f} s   grpo-lab run {b_times[-1]:.2f} s", flush=True)
    a, b = statistics.median(a_times), statistics.median(b_times)
    print(f"median training phase: bare TRL {a:.2f} s, grpo-lab run {b:.2f} s ({args.steps} steps)")
    print(f"overhead ratio (grpo-lab / bare): {b / a:.3f}  (target <= 1.05)")


if __name__ == "__main__":
    main()
