"""The README's flag reference, generated from RunConfig so it cannot drift.

python -m grpo_lab.docs          # rewrite the table in README.md
python -m grpo_lab.docs --check  # exit 1 if README.md is out of date (the tests run this)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from .config import INT32_MAX, _bound, config_fields

BEGIN, END = "<!-- flags:begin -->", "<!-- flags:end -->"


def flag_table() -> str:
    rows = ["| flag | default | what it does |", "| --- | --- | --- |"]
    for name, _, default, meta in config_fields():
        shown = ", ".join(default) if isinstance(default, list) else default
        choices = meta.get("choices")
        what = meta["help"] + (f" One of: {', '.join(choices)}." if choices else "") + _bounds(meta["bounds"])
        rows.append(f"| `--{name}` | {'' if shown is None else f'`{shown}`'} | {what.replace('|', '/')} |")
    return "\n".join(rows)


def _bounds(bounds) -> str:
    low, high = bounds
    if low is None and high is None:
        return ""
    if high is None or high == INT32_MAX:
        return f" At least {_bound(low)}."
    return f" From {_bound(low)} to {_bound(high)}."


def updated(readme: str) -> str:
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    return pattern.sub(lambda _: f"{BEGIN}\n{flag_table()}\n{END}", readme)


def main() -> None:
    path = Path(__file__).resolve().parent.parent / "README.md"
    text = path.read_text()
    new = updated(text)
    if "--check" in sys.argv:
        sys.exit(0 if new == text else 1)
    path.write_text(new)


if __name__ == "__main__":
    main()
