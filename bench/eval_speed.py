"""Batched greedy evaluation vs the seed's loop, on the same problems with the same model, in one process.

    python bench/eval_speed.py [--models tiny-arith smollm2-135m] [--problems 200] [--threads 2] [--repeats 5]

The seed script evaluated one prompt at a time, sampling at temperature 0.7. grpo-lab generates
greedily for the whole suite in one batch (left padding) and stops each row as soon as its answer
is complete. Both are timed side by side ``--repeats`` times; prints min / median / max of each wall
time and of the ratio (each repeat's own) per model. Targets: >= 10x on the tiny model, >= 20x on SmolLM2.
"""

import argparse
import statistics
import time

import torch

from grpo_lab import evaluation, models, rewards
from grpo_lab.suites import load_suite


def seed_loop(model, tokenizer, problems, max_new_tokens: int) -> float:
    """The seed's evaluation: one prompt per generate call, sampled at T=0.7; returns accuracy."""
    correct = 0
    with torch.no_grad():
        for p in problems:
            enc = tokenizer(p.prompt, return_tensors="pt", add_special_tokens=False)
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=True, temperature=0.7,
                                 pad_token_id=tokenizer.pad_token_id)  # fmt: skip
            text = tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
            correct += rewards.is_correct(text, p.answer, p.task_type)
    return correct / len(problems)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["tiny-arith", "smollm2-135m"])
    ap.add_argument("--problems", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max_new_tokens", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    problems = load_suite("arith-v1")[: args.problems]
    for name in args.models:
        path = models.resolve(name).path
        tokenizer, model = models.load_tokenizer(path), models.load_model(path)
        model.eval()
        evaluation.evaluate(model, tokenizer, problems[:8], "warmup")  # first-call costs out of both timings
        seeds, batched, ratios = [], [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            seed_acc = seed_loop(model, tokenizer, problems, args.max_new_tokens)
            t1 = time.perf_counter()
            result = evaluation.evaluate(model, tokenizer, problems, "arith-v1", args.max_new_tokens, len(problems))
            t2 = time.perf_counter()
            seeds.append(t1 - t0)
            batched.append(t2 - t1)
            ratios.append(seeds[-1] / batched[-1])
        print(f"{name}: {len(problems)} problems, {args.threads} threads, {args.repeats} repeats (min / median / max)")
        print(f"  seed loop (1 prompt/call, T=0.7): {spread(seeds, 's')}  accuracy {seed_acc:.1%} (the last)")
        print(f"  batched greedy, stop at answer:   {spread(batched, 's')}  accuracy {result.accuracy:.1%}")
        print(f"  speed-up: {spread(ratios, 'x', '.1f')}", flush=True)


def spread(values: list[float], unit: str, fmt: str = ".2f") -> str:
    return " / ".join(f"{v:{fmt}}" for v in (min(values), statistics.median(values), max(values))) + f" {unit}"


if __name__ == "__main__":
    main()
