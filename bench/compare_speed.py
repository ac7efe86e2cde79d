"""`grpo-lab compare` and `grpo-lab runs` over 10,000 or 100,000 runs, on SQLite and PostgreSQL, and MLflow's
search_runs over the same runs.

    python bench/compare_speed.py [--runs 10000] [--steps 100] [--work bench/out] [--pg URL | --pg temp]
                                  [--mlflow-python /path/to/python]

Builds (once, then reuses) a grpo-lab store of N runs, each with a curve of --steps steps, per-group results and
its metrics, written in bulk through the store (Store.load_runs), not N CLI runs. --pg also loads them into a
PostgreSQL database (an empty one you name by URL, or `temp`: a throwaway server started here from the installed
PostgreSQL binaries, as the tests do, and removed at the end). --mlflow-python logs the same runs to an MLflow
SQLite store (MLflow is only needed for the benchmark). Every figure is a whole command from a fresh process,
interpreter start and imports included, printed to a pipe (the plain format); min / median / max of --repeat (5).
grpo_lab's bytecode is compiled first, as pip does when it installs it (bench/bytecode.py).

Targets: on SQLite, compare over all runs, filtered, and top 50 each <= 1 s at 100,000 runs, and >= 10x faster
than MLflow at 10,000; `runs` (20 rows) <= 0.3 s on 10,000 runs. "all" and "filter" are compare as a person runs
it (the first 100 rows and a count of the rest); "every" prints all N rows (--limit 0).
"""

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bytecode import compile_package

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]  # grpo_lab, and pgserver for --pg temp

# name: (compare's flags, the MLflow query that fetches the same rows, if any). "all" and "filter" print their first
# page (100 rows and a count of the rest: what `grpo-lab compare` shows by default); "every" and "filter-every"
# print every row they select.
QUERIES = {
    "all": ([], None),
    "filter": (["--where", "beta=0.1 and held_out>=0.5"], None),
    "top50": (["--sort", "-held_out", "--limit", "50"], "top50"),
    "every": (["--limit", "0"], "all"),
    "filter-every": (["--where", "beta=0.1 and held_out>=0.5", "--limit", "0"], "filter"),
}
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
CURVE = ("reward", "reward_std", "frac_reward_zero_std", "kl", "loss", "grad_norm", "entropy", "learning_rate")


def synthetic_runs(n: int, steps: int):
    """(run row, curve, results, metrics) of n runs, the same for every store that gets them (seeded)."""
    from grpo_lab.metrics import compute
    from grpo_lab.store.db import Run

    rng = random.Random(0)
    for i in range(n):
        config = {"dataset_type": rng.choice(["arithmetic", "mixed"]), "n_samples": rng.choice([100, 500]),
                  "batch_size": 256, "num_generations": rng.choice([4, 16]), "learning_rate": rng.choice([1e-5, 5e-5]),
                  "temperature": rng.choice([0.7, 1.0]), "beta": rng.choice([0.0, 0.1]), "seed": i % 5,
                  "model_name": "tiny-arith", "exp_name": f"bench_{i % 50}", "tags": ["bench"]}  # fmt: skip
        skill = rng.random()
        curve = [(s, {k: round(rng.random() * (skill if k == "reward" else 1), 4) for k in CURVE})
                 for s in range(1, steps + 1)]  # fmt: skip
        results = []
        for stage, acc in (("before", 0.35), ("after", 0.35 + 0.3 * skill)):
            for split, total in (("train", 500), ("held_out", 200), ("arith-v1", 200)):
                results.append((stage, split, "overall", "", int(acc * total), total))
                for op in "+-*/":
                    results.append((stage, split, "operation", op, int(acc * 50) - rng.randint(0, 5), 50))
        metrics = compute(curve, results, {"arith-v1": 0})
        started = (START + timedelta(minutes=i)).isoformat(timespec="seconds")
        run = Run(id=f"b{i:07d}", exp_name=config["exp_name"], status="finished", started_at=started, host="bench",
                  model_name="tiny-arith", tags=json.dumps(config["tags"]), config=json.dumps(config),
                  summary=json.dumps(metrics), duration_s=60.0, verdict="unchecked",
                  command="grpo-lab run --preset bench", hypothesis=f"bench run {i}")  # fmt: skip
        yield run, curve, results, metrics


def build(db: str, n: int, steps: int, runs_file: Path | None = None) -> None:
    from grpo_lab.store.db import Store

    store = Store(db)
    started = time.time()
    out = open(runs_file, "w") if runs_file else None  # noqa: SIM115  (closed below)

    def records():
        for k, record in enumerate(synthetic_runs(n, steps)):
            if out:
                run, curve, _, metrics = record
                out.write(json.dumps({"name": run.exp_name, "config": json.loads(run.config), "steps": curve,
                                      "final": metrics, "status": "finished"}) + "\n")  # fmt: skip
            if k % 10000 == 9999:
                print(f"  {k + 1} runs ({time.time() - started:.0f} s)", flush=True)
            yield record

    store.load_runs(records(), batch=1000)
    store.close()
    if out:
        out.close()
    print(f"  built in {time.time() - started:.0f} s", flush=True)


def timed(cmd: list[str], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return times


def spread(times: list[float]) -> str:
    return f"{min(times):6.2f} / {statistics.median(times):6.2f} / {max(times):6.2f} s"


def bench(label: str, db: str, repeat: int, mlflow: tuple[str, str] | None = None) -> None:
    lab = [sys.executable, "-m", "grpo_lab"]
    print(f"\n{label}; whole command, min / median / max of {repeat}", flush=True)
    for name, (flags, kind) in QUERIES.items():
        ours = timed([*lab, "compare", "--db", db, "--format", "plain", *flags], repeat)
        line = f"  {name:12s} grpo-lab compare {spread(ours)}"
        if mlflow and kind:
            python, uri = mlflow
            theirs = timed([python, str(HERE / "mlflow_side.py"), "query", kind, uri], repeat)
            ratio = statistics.median(theirs) / statistics.median(ours)
            line += f"   MLflow search_runs {spread(theirs)}   ratio of medians {ratio:5.1f}x"
        print(line, flush=True)
    print(f"  runs         grpo-lab runs    {spread(timed([*lab, 'runs', '--db', db, '--format', 'plain'], repeat))}",
          flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10000)
    ap.add_argument("--steps", type=int, default=100, help="curve length of every run (the store's size)")
    ap.add_argument("--work", type=Path, default=HERE / "out")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--pg", help="an empty PostgreSQL database URL to load the runs into, or 'temp'")
    ap.add_argument("--mlflow-python", help="an interpreter with mlflow installed")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    compile_package(HERE.parent)
    stem = f"{args.runs}x{args.steps}"
    db, runs_file = args.work / f"compare_{stem}.db", args.work / f"runs_{stem}.jsonl"
    if not db.exists():
        print(f"building a grpo-lab SQLite store of {args.runs} runs ...", flush=True)
        build(str(db), args.runs, args.steps, runs_file if args.mlflow_python else None)
    mlflow = None
    if args.mlflow_python:
        mlflow_db = args.work / f"mlflow_{stem}.db"
        if not mlflow_db.exists():
            if not runs_file.exists():
                raise SystemExit(f"{runs_file} is missing: remove {db} to build both stores from the same runs")
            print(f"logging {args.runs} runs to MLflow ...", flush=True)
            subprocess.run([args.mlflow_python, str(HERE / "mlflow_side.py"), "build", str(runs_file),
                            f"sqlite:///{mlflow_db}"], check=True)  # fmt: skip
        mlflow = (args.mlflow_python, f"sqlite:///{mlflow_db}")
    bench(f"SQLite, {args.runs} runs ({db.stat().st_size / 1e6:.0f} MB)", str(db), args.repeat, mlflow)
    if args.pg:
        server = None
        if args.pg == "temp":
            import pgserver

            if reason := pgserver.unavailable():
                raise SystemExit(f"--pg temp: {reason}")
            server = pgserver.Server().start()
            url = server.url(server.create_database())
        else:
            url = args.pg
        try:
            print(f"\nloading the same {args.runs} runs into PostgreSQL ...", flush=True)
            build(url, args.runs, args.steps)
            bench(f"PostgreSQL, {args.runs} runs", url, args.repeat)
        finally:
            if server:
                server.stop()
    print("\ntargets: SQLite compare <= 1 s each at 100,000 runs; runs <= 0.3 s at 10,000; >= 10x MLflow")


if __name__ == "__main__":
    main()
