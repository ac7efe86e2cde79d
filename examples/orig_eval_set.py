"""An evaluation set in the shape the original project keeps its own: a Hugging Face ``datasets`` folder
(``save_to_disk``) of 200 rows with ``prompt``, ``answer``, ``difficulty`` and ``metadata.operation``, in which 15
prompts repeat (185 distinct problems), as real evaluation sets often do.

    python examples/orig_eval_set.py orig-eval                  # the datasets folder
    python examples/orig_eval_set.py orig-eval --csv orig-eval.csv --parquet orig-eval.parquet

The problems are arithmetic on 0-20 (+ - *), the range grpo-lab's default runs train on, drawn with a fixed seed:
the same folder every time. The CSV spells the nested column as ``metadata.operation``; the Parquet file keeps it
nested. ``grpo-lab eval --suite orig-eval`` and ``grpo-lab run --eval_suite orig-eval`` read any of the three.
"""

from __future__ import annotations

import argparse
import csv
import random

ROWS, REPEATS, SEED = 200, 15, 2024


def tier(a: int, op: str, b: int) -> str:
    result = a + b if op == "+" else a - b if op == "-" else a * b
    if op == "+":
        return "easy" if a % 10 + b % 10 < 10 else "medium"
    if op == "-":
        return "medium" if result >= 0 else "hard"
    return "easy" if 0 in (a, b) else "hard" if result < 100 else "very_hard"


def rows(n: int = ROWS, repeats: int = REPEATS, seed: int = SEED) -> list[dict]:
    """``n`` rows, ``repeats`` of them repeating an earlier row's prompt (and answer), in a shuffled order."""
    rng = random.Random(seed)
    distinct: dict[str, dict] = {}
    while len(distinct) < n - repeats:
        a, op, b = rng.randint(0, 20), rng.choice("+-*"), rng.randint(0, 20)
        result = a + b if op == "+" else a - b if op == "-" else a * b
        prompt = f"Calculate: {a} {op} {b} = "
        distinct.setdefault(prompt, {"prompt": prompt, "answer": str(result), "difficulty": tier(a, op, b),
                                     "metadata": {"operation": op}})  # fmt: skip
    out = list(distinct.values())
    out += [dict(row) for row in rng.sample(out, repeats)]
    rng.shuffle(out)
    return out


def write_csv(data: list[dict], path: str) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["prompt", "answer", "difficulty", "metadata.operation"])
        for row in data:
            writer.writerow([row["prompt"], row["answer"], row["difficulty"], row["metadata"]["operation"]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="where the datasets folder goes (save_to_disk)")
    parser.add_argument("--csv", help="also write the set as a CSV file")
    parser.add_argument("--parquet", help="also write the set as a Parquet file")
    args = parser.parse_args()
    import datasets

    datasets.disable_progress_bars()
    data = rows()
    dataset = datasets.Dataset.from_list(data)
    dataset.save_to_disk(args.folder)
    if args.csv:
        write_csv(data, args.csv)
    if args.parquet:
        dataset.to_parquet(args.parquet)
    print(f"{len(data)} rows, {len({r['prompt'] for r in data})} distinct prompts -> {args.folder}")


if __name__ == "__main__":
    main()
