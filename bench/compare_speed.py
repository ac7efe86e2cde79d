"""`grpo-lab compare` over 10,000 runs, and MLflow's search_runs over the same runs.

    python bench/compare_speed.py [--runs 10000] [--work bench/out] [--mlflow-python /path/to/python]

Builds (once, then reuses) a grpo-lab store of N runs, each with a 100-step curve and per-group results,
and the same runs logged to an MLflow SQLite store (MLflow is only needed for the benchmark: give an
interpreter that has it with --mlflow-python, or leave it out to time grpo-lab alone). Every figure is a
whole command from a fresh process, interpreter start and imports included; median of 3.
Targets: compare over all runs <= 1 s, and >= 10x faster than MLflow on each of the three queries.
"""

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUERIES = {
    "all": ([], "all"),
    "filter": (["--where", "beta=0.1 and held_out>=0.5"], "filter"),
    "top50": (["--sort", "-held_out", "--limit", "50"], "top50"),
}
CURVE = ("reward", "reward_std", "frac_reward_zero_std", "kl", "loss", "grad_norm", "entropy", "learning_rate")


def synthetic_runs(n: int):
    from grpo_lab.summary import summarize

    rng = random.Random(0)
    for i in range(n):
        config = {"dataset_type": rng.choice(["arithmetic", "mixed"]), "n_samples": rng.choice([100, 500]),
                  "batch_size": 256, "num_generations": rng.choice([4, 16]), "learning_rate": rng.choice([1e-5, 5e-5]),
                  "temperature": rng.choice([0.7, 1.0]), "beta": rng.choice([0.0, 0.1]), "seed": i % 5,
                  "model_name": "tiny-arith", "exp_name": f"bench_{i % 50}", "tags": ["bench"]}  # fmt: skip
        skill = rng.random()
        steps = [(s, {k: round(rng.random() * (skill if k == "reward" else 1), 4) for k in CURVE})
                 for s in range(1, 101)]  # fmt: skip
        results = []
        for stage, acc in (("before", 0.35), ("after", 0.35 + 0.3 * skill)):
            for split, total in (("train", 500), ("held_out", 200), ("arith-v1", 200)):
                results.append((stage, split, "overall", "", int(acc * total), total))
                for op in "+-*/":
                    results.append((stage, split, "operation", op, int(acc * 50), 50))
        yield f"b{i:07d}", config, steps, results, summarize(steps, results)


def build_store(db: Path, n: int, runs_file: Path) -> None:
    from grpo_lab.store.db import Run, Store

    store = Store(f"sqlite:///{db}")
    started = time.time()
    with open(runs_file, "w") as out:
        for k, (run_id, config, steps, results, summary) in enumerate(synthetic_runs(n)):
            store.create_run(Run(id=run_id, exp_name=config["exp_name"], status="finished",
                                 started_at="2026-01-01T00:00:00+00:00", host="bench", model_name="tiny-arith",
                                 tags=json.dumps(config["tags"]), config=json.dumps(config),
                                 summary=json.dumps(summary), duration_s=60.0))  # fmt: skip
            store.record(run_id, steps=steps, results=results)
            final = {k: v for k, v in summary.items() if isinstance(v, float) and ":" not in k}
            out.write(json.dumps({"name": config["exp_name"], "config": config, "steps": steps, "final": final,
                                  "status": "finished"}) + "\n")  # fmt: skip
            if k % 1000 == 999:
                print(f"  grpo-lab store: {k + 1} runs ({time.time() - started:.0f} s)", flush=True)


def timed(cmd: list[str], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10000)
    ap.add_argument("--work", type=Path, default=HERE / "out")
    ap.add_argument("--mlflow-python", help="an interpreter with mlflow installed")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    db, runs_file, mlflow_db = args.work / f"compare_{args.runs}.db", args.work / f"runs_{args.runs}.jsonl", None
    if not db.exists():
        print(f"building a grpo-lab store of {args.runs} runs ...", flush=True)
        build_store(db, args.runs, runs_file)
    if args.mlflow_python:
        mlflow_db = args.work / f"mlflow_{args.runs}.db"
        if not mlflow_db.exists():
            print(f"logging {args.runs} runs to MLflow ...", flush=True)
            t = time.time()
            subprocess.run([args.mlflow_python, str(HERE / "mlflow_side.py"), "build", str(runs_file),
                            f"sqlite:///{mlflow_db}"], check=True)  # fmt: skip
            print(f"  MLflow store built in {time.time() - t:.0f} s ({mlflow_db.stat().st_size / 1e6:.0f} MB)")
    lab = [sys.executable, "-m", "grpo_lab", "compare", "--db", str(db), "--format", "md"]
    print(f"\n{args.runs} runs; whole command, median of 3")
    for name, (flags, kind) in QUERIES.items():
        ours = timed(lab + flags)
        line = f"  {name:7s} grpo-lab compare {ours:6.2f} s"
        if mlflow_db:
            theirs = timed([args.mlflow_python, str(HERE / "mlflow_side.py"), "query", kind, f"sqlite:///{mlflow_db}"])
            line += f"   MLflow search_runs {theirs:6.2f} s   ratio {theirs / ours:5.1f}x"
        print(line, flush=True)
    print("targets: compare over all runs <= 1 s; >= 10x faster than MLflow on each query")


if __name__ == "__main__":
    main()
