"""`grpo-lab report` over 1,000 runs: how long it takes to build, and to open in headless Chromium.

    python bench/report_speed.py [--runs 1000] [--repeat 5] [--work bench/out] [--against OTHER_CHECKOUT]

Builds (once, then reuses) a store of N runs shaped like real ones: 100 steps each with every metric TRL
logs, 4 sample completions per step with the answer the task read from each (as runs record it since m008),
accuracy per group before and after on train, held_out and arith-v1,
a note. Then, each --repeat times: the whole `grpo-lab report` command from a fresh process (interpreter
start and imports included), and the page's load event in headless Chromium (Playwright driving the
system's Chromium, a fresh browser context each time, a 1440 x 900 window), measured from the start of
navigation: the page has drawn what is in the window by then (its curves, the table, the newest run's panel); charts
further down are drawn as they scroll into view. For scale, the load event of a page holding only the vendored
plotly.js. Prints min / median / max. Targets: build <= 3 s, load <= 2 s. With --against, the same store's page
is also built and opened with another checkout's grpo-lab (e.g. a worktree of main), alternating with this one's,
so that a busy machine slows both alike: the pair, not the figures, is what to read there. Each checkout's
grpo_lab is compiled to bytecode first, as pip does when it installs it (bench/bytecode.py).
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bytecode import compile_package

HERE = Path(__file__).resolve().parent
# One step as TRL 1.16 logs it for a binary-reward GRPO run (the keys of a real run in journal/research.db).
TRL_KEYS = ("loss", "grad_norm", "learning_rate", "num_tokens", "completions/mean_length", "completions/min_length",
            "completions/max_length", "completions/clipped_ratio", "completions/mean_terminated_length",
            "completions/min_terminated_length", "completions/max_terminated_length", "rewards/binary_reward/mean",
            "rewards/binary_reward/std", "reward", "reward_std", "frac_reward_zero_std", "kl", "entropy",
            "clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean", "clip_ratio/low_min",
            "clip_ratio/high_max", "step_time", "epoch")  # fmt: skip


def synthetic_runs(n: int, steps: int = 100, per_step: int = 4):
    from grpo_lab.metrics import compute
    from grpo_lab.rewards import extract_answer
    from grpo_lab.tasks import arithmetic_problem, comparison_problem

    rng = random.Random(0)
    for i in range(n):
        mixed = i % 4 == 3
        config = {"dataset_type": "mixed" if mixed else "arithmetic", "n_samples": rng.choice([100, 500]),
                  "batch_size": 256, "num_generations": rng.choice([8, 16]), "learning_rate": rng.choice([1e-5, 5e-5]),
                  "temperature": rng.choice([0.7, 1.0]), "beta": rng.choice([0.0, 0.1]), "seed": i % 5,
                  "model_name": "tiny-arith", "exp_name": f"bench_{i % 50}", "tags": ["bench"]}  # fmt: skip
        skill = rng.random()
        curve = []
        for s in range(1, steps + 1):  # values shaped as TRL's: means of +-1 rewards over a batch are short decimals
            metrics = {k: rng.random() for k in TRL_KEYS}
            metrics.update({k: 0.0 for k in TRL_KEYS if k.startswith("clip_ratio/")})
            metrics.update({k: rng.randint(64, 256) / 64 for k in TRL_KEYS if k.startswith("completions/")})
            reward = rng.randint(0, 256) / 128 - 1
            metrics.update(
                reward=reward,
                frac_reward_zero_std=rng.randint(0, 16) / 16,
                epoch=s / steps,
                num_tokens=float(5884 * s),
                learning_rate=5e-5 * min(1, s / 10) * (1 - s / (steps + 1)),
            )
            metrics["rewards/binary_reward/mean"] = reward
            curve.append((s, metrics))
        samples = []
        for s in range(1, steps + 1):
            for k in range(per_step):
                a, b = rng.randint(0, 20), rng.randint(0, 20)
                p = comparison_problem(a, b) if mixed and k == 3 else arithmetic_problem(a, rng.choice("+-*"), b)
                right = rng.random() < skill
                completion = p.answer if right else rng.choice([f"{rng.randint(0, 400)}", " I think no", "7 + 3"])
                samples.append((s, k, p.prompt, completion, 1.0 if right else -1.0, rng.gauss(0, 1),
                                extract_answer(completion, p.task_type)))  # fmt: skip
        results = []
        for stage, acc in (("before", 0.35), ("after", 0.35 + 0.3 * skill)):
            for split, total in (("train", 500), ("held_out", 200), ("arith-v1", 200)):
                results.append((stage, split, "overall", "", int(acc * total), total))
                for group in ("+", "-", "*", "/"):
                    results.append((stage, split, "operation", group, int(acc * 50), 50))
                for group in ("very_easy", "easy", "medium", "hard", "very_hard"):
                    results.append((stage, split, "difficulty", group, int(acc * 40), 40))
        yield f"b{i:07d}", config, curve, samples, results, compute(curve, results, {"arith-v1": 0})


def build_store(db: Path, n: int) -> None:
    from grpo_lab.store.db import Run, Store

    store = Store(f"sqlite:///{db}")
    started = time.time()
    for k, (run_id, config, curve, samples, results, values) in enumerate(synthetic_runs(n)):
        store.create_run(Run(id=run_id, exp_name=config["exp_name"], status="running", host="bench",
                             started_at=f"2026-01-01T{k // 3600:02d}:{k // 60 % 60:02d}:{k % 60:02d}+00:00",
                             model_name="tiny-arith", tags=json.dumps(config["tags"]), config=json.dumps(config),
                             hypothesis=f"run {k}: lr {config['learning_rate']} beats the baseline on arith-v1",
                             command="grpo-lab run --preset cpu-quick",
                             resolved_command="grpo-lab run ..."))  # fmt: skip
        store.record(run_id, steps=curve, samples=samples, results=results)
        store.finish_run(run_id, "finished", metrics=values, duration_s=60.0, verdict="unchecked")
        store.add_note(run_id, "benchmark note", "learning")
        if k % 200 == 199:
            print(f"  {k + 1} runs ({time.time() - started:.0f} s)", flush=True)


def spread(values: list[float]) -> str:
    return f"min {min(values):5.2f}  median {statistics.median(values):5.2f}  max {max(values):5.2f} s"


def build_times(db: Path, out: Path, repeat: int, checkouts: list[Path | None]) -> dict[Path | None, list[float]]:
    """The whole command, from a fresh process, with each checkout's grpo_lab (None: this one) in turn."""
    times: dict[Path | None, list[float]] = {c: [] for c in checkouts}
    for _ in range(repeat):
        for checkout in checkouts:  # alternate, so a busy moment hits both alike
            env = dict(os.environ, PYTHONPATH=str(checkout)) if checkout else None
            target = out if checkout is None else out.with_name(f"{out.stem}.against.html")
            t = time.perf_counter()  # -m puts the working directory first on sys.path: run in the checkout
            subprocess.run([sys.executable, "-m", "grpo_lab", "report", "--db", str(db.resolve()), "--out",
                            str(target.resolve())], check=True, stdout=subprocess.DEVNULL, env=env,
                           cwd=checkout)  # fmt: skip
            times[checkout].append(time.perf_counter() - t)
    return times


def load_times(pages: list[Path], repeat: int) -> dict[Path, list[float]]:
    from playwright.sync_api import sync_playwright

    from grpo_lab.browser import find_chromium, flags

    times: dict[Path, list[float]] = {page: [] for page in pages}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium(), args=flags())
        for _ in range(repeat):
            for page_path in pages:  # alternate, so a busy moment hits both alike
                context = browser.new_context(viewport={"width": 1440, "height": 900})
                page = context.new_page()
                errors = []
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                page.goto(page_path.as_uri(), wait_until="load", timeout=120_000)
                if errors:
                    raise SystemExit(f"{page_path.name}: {errors[0]}")
                end = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
                times[page_path].append(end / 1000)
                context.close()
        browser.close()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--work", type=Path, default=HERE / "out")
    ap.add_argument("--against", type=Path, help="another checkout of grpo-lab to time beside this one")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    # v2: samples carry their extracted answer, as runs record them now (a store built before is not reused)
    db, html = args.work / f"report_{args.runs}.v2.db", args.work / f"report_{args.runs}.html"
    if not db.exists():
        print(f"building a store of {args.runs} runs ...", flush=True)
        build_store(db, args.runs)
    from grpo_lab.report import plotly_js

    floor = args.work / "plotly_only.html"
    floor.write_text(f"<!doctype html><html><head><meta charset=utf-8><script>{plotly_js()}</script></head>"
                     "<body></body></html>")  # fmt: skip
    checkouts = [None, args.against.resolve()] if args.against else [None]
    for checkout in checkouts:
        compile_package(checkout or HERE.parent)
    built = build_times(db, html, args.repeat, checkouts)
    other = html.with_name(f"{html.stem}.against.html")
    print(f"\n{args.runs} runs, {html.stat().st_size / 1e6:.1f} MB page; {args.repeat} times each")
    print(f"  build   grpo-lab report (whole command)   {spread(built[None])}   target <= 3 s", flush=True)
    loads = load_times([html, floor, *([other] if args.against else [])], args.repeat)
    print(f"  open    load event in headless Chromium   {spread(loads[html])}   target <= 2 s")
    print(f"  (plotly.js alone, for scale)              {spread(loads[floor])}")
    if args.against:
        print(f"\n{args.against} ({other.stat().st_size / 1e6:.1f} MB page), alternating with the above")
        print(f"  build                                     {spread(built[checkouts[1]])}")
        print(f"  open                                      {spread(loads[other])}")


if __name__ == "__main__":
    main()
