"""Hostile input, table-driven: every command and flag, with wrong types, extremes, encodings, paths, URLs,
templates, IDs, filters and criteria. Each case must end with exit code 2, exactly one line on stderr that
starts with "grpo-lab: error:", no traceback, and the store, the journal and every other file exactly as they
were. Cases run in this process (main() as the console script runs it, sys.argv patched), so that 200 of
them take seconds; a few run as real subprocesses at the end, for what only a real process shows.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import call

from grpo_lab.metrics import compute
from grpo_lab.store.db import Run, Store

HUGE, NEG_HUGE = "99999999999999999999999", "-99999999999999999999999"
INT_FLAGS = ("n_samples", "min_num", "max_num", "batch_size", "num_generations", "epochs", "max_completion_length",
             "max_steps", "seed", "eval_samples", "eval_batch_size", "threads")  # fmt: skip
FLOAT_FLAGS = ("learning_rate", "temperature", "beta")
RUN = ("run", "--hypothesis", "h")  # a real run, were its input accepted: must fail before anything is written
DRY = ("run", "--dry_run")

TEMPLATES = {
    "os.md.j2": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "mro.md.j2": "{{ ().__class__.__mro__[1].__subclasses__() }}",
    "open.md.j2": "{{ lipsum.__globals__['__builtins__'].open('/etc/passwd').read() }}",
    "mutate.md.j2": "{% set _ = run.tags.append('x') %}",
    "big.md.j2": "{{ 'x' * 10**10 }}",
    "pow.md.j2": "{{ 2 ** 100000000 }}",
    "range.md.j2": "{% for i in range(10**9) %}{% endfor %}",
    "recursion.md.j2": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "syntax.md.j2": "{% if run.id %}",
    "undefined.md.j2": "{{ run.no_such_field }}",
    "raise.md.j2": "{{ run.tags | first | int // 0 }}",
}


def cases():
    c = []

    def add(*args, id=None):  # noqa: A002
        c.append(pytest.param(list(args), id=id or " ".join(a[:24] for a in args)[:60]))

    # commands and options that do not exist
    add("nonsense")
    add("--bogus")
    add("run", "--no_such_flag", "1")
    add("journal", "nonsense")
    add("runs", "extra-argument")
    add("run", "--batch_size")  # an option without its value
    # every integer flag: not a number, a fraction, empty, beyond what the libraries take, far below
    for flag in INT_FLAGS:
        for value in ("x", "1.5", "", HUGE, NEG_HUGE):
            add(*DRY, f"--{flag}", value)
    # every float flag: infinite, not a number, overflowing, not a number at all, empty, negative
    for flag in FLOAT_FLAGS:
        for value in ("inf", "-inf", "nan", "1e999", "x", "", "-1"):
            add(*DRY, f"--{flag}", value)
    add(*DRY, "--temperature", "1e-320")
    add(*DRY, "--temperature", "0")
    add(*DRY, "--temperature", "1000")
    for flag, bad in (("dataset_type", "words"), ("dataset_type", "ARITHMETIC"), ("dataset_type", ""),
                      ("reward", "dense"), ("reward", "BINARY"), ("reward", "")):  # fmt: skip
        add(*DRY, f"--{flag}", bad)
    # names, tags and paths
    for value in ("", "   ", "tiny\x1b[2J", "tiny\narith"):
        add(*DRY, "--model_name", value, id=f"run --model_name {value!r}")
    for value in ("", "two\nlines", "\x07bell"):
        add(*DRY, "--exp_name", value, id=f"run --exp_name {value!r}")
    add(*DRY, "--tags", "x" * 65)
    add(*DRY, "--tags", "a\x1bb", id="run --tags escape")
    for suite in ("", "arith-v9", "none ", "missing.jsonl", "files/d.jsonl", "files/bin.jsonl", "files/empty.jsonl",
                  "files/zero.jsonl", "files/fifo.jsonl", "files/badjson.jsonl", "files/fields.jsonl",
                  "files/conflict.jsonl", "files/train.jsonl", "files/we ird.jsonl",
                  "/proc/self/nope.jsonl"):  # fmt: skip
        add(*DRY, "--eval_suite", suite)
    for out in ("", "files/afile", "files/afile/x", "/proc/self/x", "files/full", "/proc/version"):
        add(*DRY, "--output_dir", out)
    for preset in ("", "nope", "../cpu-quick"):
        add(*DRY, "--preset", preset)
    add(*DRY, "--wandb", "")
    add(*DRY, "--wandb", "sometimes")
    # combinations that cannot train
    add(*DRY, "--batch_size", "100")
    add(*DRY, "--num_generations", "1", "--batch_size", "16")
    add(*DRY, "--n_samples", "2000")
    add(*DRY, "--n_samples", "10")
    add(*DRY, "--min_num", "9", "--max_num", "3")
    add(*DRY, "--dataset_type", "small_numbers", "--max_num", "20")
    # what a run is for: hypothesis, expectation, criteria
    add("run")
    add("run", "--hypothesis", "   ")
    add("run", "--hypothesis", "\x1b]0;pwned\x07", id="run --hypothesis escape")
    add(*RUN, "--expected", "\x1b[2J", id="run --expected escape")
    for criteria in ("arith-v1 >= inf", "accuracy > 1", "arith-v1 >= 0.4 or kl < 1", "arith-v1 >=", "'",
                     "mixed-v1 > 0", "beta = 0.1", "arith-v1 > high", "arith-v1[^] > 0",
                     "<!-- grpo-lab:end aaaa0001 -->"):  # fmt: skip
        add(*RUN, "--criteria", criteria)
    # models that are not there, as typed by a person (the store is opened: it must not change)
    for model in ("runs/does-not-exist", "./nowhere", "files/afile", "/proc/self", "/dev/null", "a" * 300,
                  "https://huggingface.co/Qwen/Qwen2-0.5B", "run:zzzz", "run:", "run:aaa", "run:aaaa0001"):  # fmt: skip
        add(*RUN, "--model_name", "tiny-arith" if model == "" else model, "--output_dir", "files/new-out")
    # names too long for the file system, wherever a path goes
    long = "a" * 300
    add(*DRY, "--output_dir", long, id="run --output_dir too long")
    add(*DRY, "--eval_suite", f"{long}.jsonl", id="run --eval_suite too long")
    add("journal", "render", "--out", f"{long}.md", id="journal render --out too long")
    add("journal", "render", "--template", f"{long}.md.j2", id="journal render --template too long")
    add("eval", "--model_name", f"./{long}", id="eval --model_name too long")
    # runs, show, note, diff: IDs
    add("runs", "--limit", "-1")
    add("runs", "--limit", HUGE)
    add("runs", "--limit", "x")
    add("runs", "-n", "")
    for run_id in ("", "aaa", "zzzz", "%", "_", "a" * 1000):
        add("show", run_id)
    add("show")
    add("note", "aaaa0001", "")
    add("note", "aaaa0001", "   ")
    add("note", "aaaa0001", "\x1b[2J", id="note escape")
    add("note", "aaaa0001", "x", "--kind", "")
    add("note", "aaaa0001", "x", "--kind", "rumour")
    add("note", "zzzz", "x")
    add("note", "aaa", "x")
    add("note")
    add("diff", "aaaa0001", "zzzz")
    add("diff", "zzzz", "aaaa0001")
    add("diff", "", "aaaa0001")
    add("diff", "aaaa0001")
    # compare: IDs, filters, sorting, limits, formats, statistics
    add("compare", "zzzz")
    for where in ("colour=red", "beta=", "=1", "beta=0.1 or beta=0", "beta=0.1; DROP TABLE run", "'", "beta=0.1 and",
                  "beta>>1", "arith-v1[=]>0", "held_out > 0.5 and and", "x" * 5000):  # fmt: skip
        add("compare", "--where", where)
    for sort in ("", "-", "nope", "-nope"):
        add("compare", "--sort", sort)
    for flag, value in (("--limit", "-1"), ("--limit", HUGE), ("--limit", "x"), ("--last", "-1"),
                        ("--last", "0"), ("--last", HUGE), ("--format", ""), ("--format", "xml"),
                        ("--format", "TABLE")):  # fmt: skip
        add("compare", flag, value)
    add("compare", "--baseline", "exp")
    add("compare", "--metric", "held_out")
    add("compare", "--group-by-seed", "--metric", "held_out")
    add("compare", "--group-by-seed", "--baseline", "nope")
    add("compare", "--group-by-seed", "--baseline", "exp", "--metric", "nope")
    add("compare", "--db", "postgresql://user:secret@localhost:1/x")
    # journal: templates that reach for internals or break, and places a journal cannot go
    for name in TEMPLATES:
        add("journal", "render", "--stdout", "--template", f"files/{name}")
        add("journal", "render", "--template", f"files/{name}")
    for template in ("/proc/self/mem", "files/bin.md", "files/adir", "files/missing.md.j2", "nonexistent", "",
                     "files/fifo.md.j2"):  # fmt: skip
        add("journal", "render", "--template", template)
    for out in ("files/adir", "", "files/afile/x.md", "files/bin.md", "/proc/version", "/proc/self/x.md",
                "/dev/null"):  # fmt: skip
        add("journal", "render", "--out", out)
    for since in ("", "2026-13-01", "yesterday", "9999-99-99"):
        add("journal", "render", "--since", since)
    add("journal", "render", "zzzz")
    add("journal", "render", "aaa")
    add("journal", "render", "--sweep", "")
    # report: an --out or --screenshot that is not a file to replace (a FIFO stands in for /dev/full), and names
    # given empty, here and in compare and sweep (a blank sweep would be a prefix of every sweep)
    for out in ("files/adir", "", "files/afile/x.html", "files/fifo.md.j2"):
        add("report", "--out", out)
    add("report", "--out", "files/r.html", "--screenshot", "files/fifo.jsonl")
    add("report", "--out", "files/r.html", "--screenshot", "files/adir")
    add("report", "--out", "files/r.html", "--sweep", "")
    add("compare", "--sweep", "")
    add("compare", "--sweep", "x", "--metric", " ")
    add("compare", "--group-by-seed", "--baseline", "")
    add("sweep", "status", "")
    add("sweep", "resume", "")
    add("sweep", "resume", "zzzz")
    # eval (its lifecycle is another issue's; these already hold)
    add("eval", "--model_name", "")
    add("eval", "--model_name", "./no/such/model")
    add("eval", "--model_name", "runs/does-not-exist")
    add("eval", "--model_name", "run:zzzz")
    add("eval", "--model_name", "tiny-arith", "--suite", "arith-v9")
    add("eval", "--model_name", "tiny-arith", "--suite", "")
    add("eval", "--model_name", "tiny-arith", "--suite", "files/zero.jsonl")
    add("eval", "--model_name", "tiny-arith", "--batch_size", "0")
    add("eval", "--model_name", "tiny-arith", "--max_new_tokens", "0")
    # --- round three (issue 23) ---
    # a mistyped output path must not destroy a file the person did not name as this output
    add("report", "--out", "grpo_lab.db")
    add("report", "--out", "files/store-link.html")  # a link onto the store
    add("report", "--screenshot", "grpo_lab.db")
    add("report", "--screenshot", "files/store-link.png")
    add("report", "--screenshot", "files/notes.md")
    add("report", "--out", "files/r.html", "--screenshot", "files/r.html")
    add("report", "--out", "files/r.html", "--screenshot", "files/r-link.png")  # a link onto the other output
    add("report", "--out", "files/r.htm", "--screenshot", "files/r.html.png", "--sweep", "zzzz")
    add("report", "--out", f"{'a' * 300}.html", id="report --out name too long")
    add("report", "--screenshot", f"{'a' * 300}.png", id="report --screenshot name too long")
    add("report", "--out", "/proc/r.html")  # a folder no one may write in
    add("report", "--out", "files/notes.md")
    add("report", "--screenshot", "files/r.png", "--screenshot-width", "0")  # issue 20: a PNG of no width
    add("report", "--screenshot", "files/r.png", "--screenshot-width", "9" * 5000, id="report --screenshot-width huge")
    add("report", "--db", "postgresql://user:secret@localhost:1/x")  # report reads PostgreSQL now: unreachable
    add("journal", "render", "--out", "grpo_lab.db")
    add("journal", "render", "--out", "files/store-link.md")
    # escape sequences through sweep files, inline sweeps and suite files
    add("sweep", "files/escape.toml", "--dry_run")
    add("sweep", "--grid", "beta=0,0.1", "--hypothesis", "\x1b]0;x\x07", "--dry_run", id="sweep --hypothesis escape")
    add("sweep", "--grid", "beta=0,0.1", "--hypothesis", "h", "--expected", "\x1b[2J", "--dry_run",
        id="sweep --expected escape")  # fmt: skip
    add("sweep", "--grid", "beta=0,0.1", "--hypothesis", "h", "--name", "a\x1bb", "--dry_run", id="sweep --name esc")
    add(*DRY, "--eval_suite", "files/escape.jsonl")
    add(*DRY, "--eval_suite", "files/surrogate.jsonl")
    # pipes, devices and huge files where a file belongs
    add("runs", "--db", "files/fifo.jsonl")
    add("runs", "--db", "files/adir")
    add("sweep", "files/fifo.toml", "--dry_run")
    add("sweep", "files/zero.toml", "--dry_run")
    add("sweep", "files/huge.toml", "--dry_run")
    add(*DRY, "--eval_suite", str(SPARSE), id="run --eval_suite sparse 100 GB")
    # grids whose arms would merge or replace one another
    add("sweep", "--grid", "beta=0.1", "--grid", "beta=0.2", "--hypothesis", "h", "--dry_run")
    add("sweep", "--grid", "beta=0.1,0.1", "--hypothesis", "h", "--dry_run")
    add("sweep", "--set", "max_steps=2", "--set", "max_steps=3", "--grid", "beta=0", "--hypothesis", "h", "--dry_run")
    # sweep files of the wrong TOML types (each was a traceback)
    for key in TOML_TYPES:
        add("sweep", f"files/type-{key}.toml", "--dry_run")
    add("sweep", "files/bigint.toml", "--dry_run")
    add("sweep", "files/bigseed.toml", "--dry_run")
    add("sweep", "files/nested.toml", "--dry_run")
    add("compare", "--where", " and ".join(f"beta>={i}" for i in range(300)), id="compare --where 300 terms")
    # options given empty, and options --dry_run let through
    add("sweep", "--grid", "beta=0,0.1", "--hypothesis", "h", "--seeds", "", "--dry_run")
    add("sweep", "--grid", "beta=0,0.1", "--hypothesis", "h", "--name", "", "--dry_run")
    add("sweep", "--grid", "beta=0,0.1", "--hypothesis", "h", "--wandb", "sometimes", "--dry_run")
    add("sweep", "--grid", "beta=0,0.1", "--hypothesis", "h", "--timeout_min", "-5", "--dry_run")
    add("sweep", "--grid", "beta=0,0.1", "--hypothesis", "h", "--seeds", "1-" + "9" * 5000, "--dry_run",
        id="sweep --seeds 5000 digits")  # fmt: skip
    # a sweep whose recorded spec is damaged, and a resume that is refused
    add("sweep", "resume", "damaged")
    add("compare", "--sweep", "damaged")
    add("resume", "aaaa0001")
    # the GRPO settings and --trl (issue 19): values, combinations TRL refuses, keys grpo-lab owns, unknown keys
    for flag, value in (("--loss_type", "ppo"), ("--scale_rewards", "std"), ("--importance_sampling_level", "x"),
                        ("--epsilon", "-0.1"), ("--epsilon_high", "nan"), ("--num_iterations", "0"), ("--top_p", "0"),
                        ("--top_k", "-1"), ("--min_p", "2"), ("--repetition_penalty", "0"), ("--warmup", "1.5"),
                        ("--lr_scheduler_type", "reduce_lr_on_plateau"), ("--lr_scheduler_type", "cosine_with_min_lr"),
                        ("--weight_decay", "-1"), ("--max_grad_norm", "inf")):  # fmt: skip
        add(*DRY, flag, value)
    for trl in ("detla=1.5", "num_generations=8", "output_dir=x", "delta=abc", "delta", "=1",
                "auto_find_batch_size=true", "lr_scheduler_kwargs={not json"):  # fmt: skip
        add(*DRY, "--trl", trl)
    add(*DRY, "--reserve", "arith-v9")
    add(*DRY, "--reward", "dense")
    add(*DRY, "--reward", "binary*x")
    add(*DRY, "--task", "files/afile")
    add(*DRY, "--task", "files/fifo.jsonl.py")
    # text that is not text: bytes the shell passed that are not UTF-8 reach Python as lone surrogates
    add(*DRY, "--exp_name", "caf\udce9", id="run --exp_name latin-1 bytes")
    add("note", "aaaa0001", "\udcff\udcfe", id="note invalid utf-8")
    add("show", "\udcff", id="show invalid utf-8")
    add("compare", "--where", "name=\udce9", id="compare --where invalid utf-8")
    # --- round three, every command: the same faults where the first probes did not reach (issue 23) ---
    # a --db that is a pipe, a device or a folder hangs or fails in no command
    for command in (("compare",), ("show", "aaaa0001"), ("note", "aaaa0001", "n"), ("diff", "aaaa0001", "aaab0002"),
                    ("journal", "render", "--stdout"), ("report", "--out", "files/new-out.html"), ("sweep", "list"),
                    ("sweep", "status", "damaged"), ("resume", "aaaa0001"), ("rerun", "aaaa0001"),
                    ("eval", "--model_name", "tiny-arith"), (*RUN, "--model_name", "tiny-arith")):  # fmt: skip
        add(*command, "--db", "files/fifo.jsonl", id=f"{' '.join(command)[:30]} --db fifo")
    add("compare", "--db", "files/zero.jsonl")
    add("show", "aaaa0001", "--db", "files/adir")
    # evaluation suites that are escapes, not text, pipes, devices or 100 GB of nothing
    for suite in ("escape", "surrogate", "fifo", "zero", "bin", "d"):
        add("eval", "--model_name", "tiny-arith", "--suite", f"files/{suite}.jsonl")
    add("eval", "--model_name", "tiny-arith", "--suite", str(SPARSE), id="eval --suite sparse 100 GB")
    add("eval", "--model_name", "tiny-arith", "--hypothesis", "\x1b]0;x\x07", id="eval --hypothesis escape")
    # rerun and show --diff: IDs and outputs that cannot be
    add("rerun", "zzzz")
    add("rerun", "")
    add("rerun", "aaaa0001", "--output_dir", "files/full")
    add("rerun", "aaaa0001", "--output_dir", "grpo_lab.db")
    add("rerun", "aaaa0001", "--wandb", "sometimes")
    add("rerun", "aaaa0001", "--output_dir", f"files/{'a' * 300}", id="rerun --output_dir name too long")
    add("show", "aaaa0001", "--diff")  # recorded outside git: no diff to print
    # sweep files of more wrong types and values
    for key in SWEEP_VALUES:
        add("sweep", f"files/value-{key}.toml", "--dry_run")
    # grpo-lab sync: what is not a spool, a damaged one, one of a run this store does not hold, typed --where
    for name in ("fifo.jsonl", "zero.jsonl", "adir", "missing.jsonl", "empty.jsonl", "badjson.jsonl", "train.jsonl",
                 "bin.jsonl", *SPOOLS):  # fmt: skip
        add("sync", f"files/{name}")
    add("sync", "grpo_lab.db", id="sync the store")
    add("sync", "files/\x1b[2J.jsonl", id="sync escape")
    add("sync", str(SPARSE), id="sync 100 GB")
    add("sync", "files/spool-ok.jsonl", "--db", "files/afile", id="sync into no store")
    add("compare", "--where", "held_out>=abc")
    add("compare", "--where", "use_vllm=maybe")
    add("compare", "--where", "duration<soon")
    # --- round four (issue 24): evaluation sets as researchers keep them, through run, eval and suites import ---
    doors = {"run": (*DRY, "--eval_suite"), "eval": ("eval", "--model_name", "tiny-arith", "--suite"),
             "import": ("suites", "import")}  # fmt: skip
    sets = {
        "a folder that is not a dataset": "files/adir",
        "a folder with a pipe for its data": "files/ds-fifo",
        "a folder split it lacks": "files/ds:test",
        "a file with no answer column": "files/noanswer.csv",
        "a Parquet file with no answer column": "files/noanswer.parquet",
        "conflicting answers": "files/conflict.csv",
        "an empty CSV": "files/empty.csv",
        "an empty Parquet file": "files/empty.parquet",
        "an empty datasets folder": "files/ds-empty",
        "a huge sparse Parquet file": str(SPARSE_DIR / "huge.parquet"),
        "a huge sparse CSV": str(SPARSE_DIR / "huge.csv"),
        "a folder holding a huge sparse file": str(SPARSE_DIR / "ds"),
        "a FIFO": "files/fifo.csv",
        "a FIFO named .parquet": "files/fifo.parquet",
        "a hub id offline": "someone/eval-set",
        "a hub id and split offline": "someone/eval-set:test",
        "a folder missing here": "files/no-such-folder",
        "not Parquet": "files/bin.parquet",
        "CSV rows longer than the header": "files/ragged.csv",
        "a JSON number": "files/number.json",
        "an answer of 5000 digits": "files/bigint.jsonl",
        "an escape in a column name": "files/escape-column.csv",
        "a damaged imported suite": "damaged-v1",
    }
    for door, args in doors.items():
        for what, value in sets.items():
            if door == "import" and value == "damaged-v1":
                continue
            extra = ("--name", "fresh-v1") if door == "import" else ()
            add(*args, value, *extra, id=f"{door}: {what}")
    for value, what in (("answer", "no column"), ("colour=red", "no field"), ("answer=nope", "a column it lacks"),
                        ("", "empty"), ("answer=target,answer=output", "a field twice"),
                        ("prompt=answer", "one column for two fields")):  # fmt: skip
        add(*DRY, "--eval_suite", "files/set.csv", "--suite_fields", value, id=f"run --suite_fields {what}")
    add(*DRY, "--suite_fields", "answer=target", id="run --suite_fields for a built-in suite")
    add("eval", "--model_name", "tiny-arith", "--suite", "files/set.csv", "--suite", "files/set.jsonl",
        id="eval: two suites of one name")  # fmt: skip
    for name in ("", "a b", "arith-v1", "train", "none", "x.csv", "x_gain", "a\x1bb", "-x"):
        add("suites", "import", "files/set.csv", "--name", name, id=f"suites import --name {name!r}")
    add("suites", "import", "arith-v1", "--name", "mine-v1", id="suites import a built-in suite")
    add("suites", "import", "files/changed.csv", "--name", "orig-v1", id="suites import a changed source")
    add("suites", "import", "files/set.csv", "--name", "damaged-v1", id="suites import over a damaged suite")
    add("suites", "import", "files/set.csv", id="suites import without --name")
    return c


HEADER = (
    '{"grpo_lab_spool": 1, "run_id": "aaaa0001", "store": "grpo_lab.db", "created_at": "2026-01-02T10:00:00+00:00"}'
)
AT = '"at": "2026-01-02T10:01:00+00:00"'
SPOOLS = {  # spools a damaged file, a hostile tester or another store's run would hand to `grpo-lab sync`
    "spool-foreign.jsonl": HEADER.replace("aaaa0001", "zzzz9999") + "\n{" + AT + ', "op": "heartbeat"}\n',
    "spool-format.jsonl": HEADER.replace('"grpo_lab_spool": 1', '"grpo_lab_spool": 99') + "\n",
    "spool-noid.jsonl": HEADER.replace("aaaa0001", "aa\\u001b[2J") + "\n",
    "spool-op.jsonl": HEADER + '\n{"op": "drop table run", ' + AT + "}\n",
    "spool-time.jsonl": HEADER + '\n{"op": "heartbeat", "at": "yesterday"}\n',
    "spool-steps.jsonl": HEADER + '\n{"op": "record", ' + AT + ', "steps": "x", "samples": [], "results": [], '
    '"predictions": []}\n',
    "spool-samples.jsonl": HEADER + '\n{"op": "record", ' + AT + ', "steps": [], "samples": [[1, 0, "p"]], '
    '"results": [], "predictions": []}\n',
    "spool-finish.jsonl": HEADER + '\n{"op": "finish", ' + AT + ', "status": "finished", "error": null, '
    '"metrics": {"a": "b"}, "values": {}}\n',
    "spool-values.jsonl": HEADER + '\n{"op": "finish", ' + AT + ', "status": "finished", "error": null, '
    '"metrics": null, "values": {"status": "x"}}\n',
    "spool-middle.jsonl": HEADER + '\n{"op": "heartbeat", ' + AT.replace("10:01", "10") + "}\n{not json\n"
    '{"op": "heartbeat", ' + AT + "}\n",
}


SPARSE = Path(os.environ.get("TMPDIR", "/tmp")) / f"grpo-lab-sparse-{os.getpid()}.jsonl"  # 100 GB of nothing
SPARSE_DIR = Path(os.environ.get("TMPDIR", "/tmp")) / f"grpo-lab-sparse-{os.getpid()}"  # more of it, as sets
TOML_TYPES = {
    "tags": "tags = 1",
    "base": "base = 1",
    "grid": "grid = [1]",
    "arms": "arms = 1",
    "flags": '[arms.a]\nflags = "x"',
    "criteria": "criteria = 1",
    "compare": "compare = [1]",
    "expected": "expected = {a = 1}",
    "hypothesis-type": 'hypothesis = 1\nname = "x"',
    "grid-value": "[grid]\nbeta = [[0]]",
    "arm-hypothesis": "[arms.a]\nhypothesis = 2",
    "tags-list": "tags = [1, 2]",
    "metric": "metric = 1",
    "baseline": "baseline = [1]",
}
SWEEP_VALUES = {
    "seeds-word": 'seeds = "abc"',
    "seeds-float": "seeds = [1.5]",
    "seeds-negative": "seeds = [-1]",
    "seeds-empty": "seeds = []",
    "seeds-bool": "seeds = [true]",
    "name-int": "name = 1",
    "name-empty": 'name = ""',
    "preset-int": "preset = 1",
    "preset-unknown": 'preset = "no-such-preset"',
    "base-unknown-flag": "[base]\ncolour = 1",
    "base-wrong-type": '[base]\nmax_steps = "ten"',
    "base-float-int": "[base]\nmax_steps = 1.5",
    "base-nan": "[base]\ntemperature = nan",
    "base-inf": "[base]\nlearning_rate = inf",
    "grid-empty-list": "[grid]\nbeta = []",
    "grid-table": "[grid]\nbeta = {a = 1}",
    "grid-unknown": "[grid]\ncolour = [1, 2]",
    "grid-bools": "[grid]\nuse_vllm = [true, false]\nbeta = [0]",
    "arms-empty": "[arms]",
    "arm-unknown-key": "[arms.a]\ncolour = 1",
    "arm-flags-unknown": "[arms.a]\nflags = {colour = 1}",
    "arm-name-escape": '[arms."a\\u001bb"]\nflags = {beta = 0}',
    "arm-name-blank": '[arms." "]\nflags = {beta = 0}',
    "baseline-unknown": 'baseline = "no-such-arm"',
    "metric-unknown": 'metric = "colour"',
    "criteria-bad": 'criteria = "arith-v1 >>= 1"',
    "compare-bad": 'compare = "colour > 0"',
    "unknown-key": "colour = 1",
    "tags-long": f'tags = ["{"t" * 100}"]',
    "date": "seeds = 1979-05-27",
}
CASES = cases()


def snapshot(root: Path) -> dict[str, str]:
    """Every file's bytes (SQLite's -wal and -shm aside) and the store's rows as SQL."""
    out = {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
           for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith(("-wal", "-shm"))}  # fmt: skip
    conn = sqlite3.connect(f"file:{root / 'grpo_lab.db'}?mode=ro", uri=True)
    try:
        out["store rows"] = hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()
    finally:
        conn.close()
    return out


@pytest.fixture(scope="module")
def arena(tmp_path_factory):
    """A store of three runs with a note, a rendered journal, and files a hostile tester would point at."""
    root = tmp_path_factory.mktemp("arena")
    store = Store(f"sqlite:///{root / 'grpo_lab.db'}")
    for run_id, started in (("aaaa0001", "2026-01-02"), ("aaab0002", "2026-01-03"), ("bbbb0003", "2026-01-04")):
        store.create_run(Run(
            id=run_id, exp_name="exp", status="running", started_at=f"{started}T10:00:00+00:00", host="h",
            model_name="tiny-arith", hypothesis="h", command="grpo-lab run", tags=json.dumps(["t"]),
            output_dir=str(root / "runs" / run_id), config=json.dumps({"beta": 0.1, "num_generations": 16, "seed": 1}),
        ))  # fmt: skip
        curve = [(i, {"reward": -0.5 + i / 10, "frac_reward_zero_std": 0.7, "kl": 0.02}) for i in range(1, 4)]
        results = [("before", "arith-v1", "overall", "", 60, 200), ("after", "arith-v1", "overall", "", 80, 200)]
        store.record(run_id, steps=curve, results=results)
        store.finish_run(run_id, "finished", metrics=compute(curve, results, {"arith-v1": 0}), verdict="unchecked",
                         verdict_detail="no criteria were given")  # fmt: skip
    store.add_note("aaaa0001", "a note", "learning")
    from grpo_lab.journal import Selection, render

    render(store, Selection(), root / "journal" / "research_journal.md")
    store.close()
    files = root / "files"
    files.mkdir()
    (root / "runs").mkdir()
    (files / "adir").mkdir()
    (files / "d.jsonl").mkdir()
    (files / "full").mkdir()
    (files / "full" / "model.safetensors").write_bytes(b"a model")
    (files / "afile").write_text("mine\n")
    (files / "bin.md").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    (files / "bin.jsonl").write_bytes(b"\xff\xfe\x00\x01")
    (files / "empty.jsonl").write_text("")
    (files / "badjson.jsonl").write_text("{not json\n")
    (files / "fields.jsonl").write_text('{"prompt": "p", "solution": "1"}\n')
    row = '{"prompt": "Calculate: 1 + 1 = ", "answer": "2", "task_type": "arithmetic", "operation": "+"}\n'
    (files / "conflict.jsonl").write_text(row + row.replace('"2"', '"3"'))
    (files / "train.jsonl").write_text(row)
    (files / "we ird.jsonl").write_text(row)
    (files / "zero.jsonl").symlink_to("/dev/zero")
    os.mkfifo(files / "fifo.jsonl")
    os.mkfifo(files / "fifo.md.j2")
    for name, text in TEMPLATES.items():
        (files / name).write_text(text + "\n")
    for name, text in SPOOLS.items():
        (files / name).write_text(text)
    (files / "spool-ok.jsonl").write_text(HEADER + "\n")
    # round three: links onto the store and onto another output, files a hostile tester points at
    (files / "store-link.html").symlink_to(root / "grpo_lab.db")
    (files / "store-link.png").symlink_to(root / "grpo_lab.db")
    (files / "store-link.md").symlink_to(root / "grpo_lab.db")
    (files / "notes.md").write_text("my notes\n")
    (files / "r.html").write_text("<p>an older report</p>\n")
    (files / "r-link.png").symlink_to(files / "r.html")
    (files / "escape.toml").write_text('name = "e"\nhypothesis = "\\u001b]0;pwned\\u0007"\n[grid]\nbeta = [0]\n')
    (files / "escape.jsonl").write_text(row.replace("Calculate", "\\u001b[2JCalculate"))
    (files / "surrogate.jsonl").write_text(row.replace("Calculate", "\\ud800Calculate"))
    os.mkfifo(files / "fifo.toml")
    (files / "zero.toml").symlink_to("/dev/zero")
    (files / "huge.toml").write_text("# " + "x" * (2 << 20) + "\n")
    with open(SPARSE, "wb") as f:
        f.truncate(100 * 2**30)
    for key, text in SWEEP_VALUES.items():
        head = ("" if key.startswith("name") else 'name = "t"\n') + 'hypothesis = "h"\n'
        tail = "" if key.startswith(("grid", "arm")) else "\n[grid]\nbeta = [0]\n"
        (files / f"value-{key}.toml").write_text(head + text + "\n" + tail)
    make_sets(root, files)
    for key, text in TOML_TYPES.items():
        head = "" if key.startswith("hypothesis") else 'name = "t"\nhypothesis = "h"\n'
        tail = "" if key in ("grid", "grid-value", "arms", "flags", "arm-hypothesis") else "\n[grid]\nbeta = [0]\n"
        (files / f"type-{key}.toml").write_text(head + text + "\n" + tail)
    (files / "bigint.toml").write_text(
        'name = "t"\nhypothesis = "h"\n[base]\nmax_steps = ' + "9" * 5000 + "\n[grid]\nbeta = [0]\n"
    )
    (files / "bigseed.toml").write_text(
        'name = "t"\nhypothesis = "h"\nseeds = ' + "9" * 5000 + "\n[grid]\nbeta = [0]\n"
    )
    (files / "nested.toml").write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    from grpo_lab.store.db import Sweep

    store = Store(f"sqlite:///{root / 'grpo_lab.db'}")
    store.create_sweep(Sweep(id="swp00001", name="damaged", hypothesis="h", spec="{not json", digest="d",
                             source="s.toml", command="grpo-lab sweep s.toml", created_at="2026-01-05T10:00:00+00:00"),
                       [])  # fmt: skip
    store.close()
    conn = sqlite3.connect(root / "grpo_lab.db")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the file holds everything: reads cannot change its bytes
    conn.close()
    gc.collect()
    yield root
    SPARSE.unlink(missing_ok=True)
    shutil.rmtree(SPARSE_DIR, ignore_errors=True)


def make_sets(root: Path, files: Path) -> None:
    """Evaluation sets a hostile tester points --eval_suite, eval --suite and suites import at (round four), and
    an imported suite (orig-v1) and a damaged one (damaged-v1) in the arena's suites folder."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    good = [{"prompt": "Calculate: 1 + 1 = ", "answer": "2"}, {"prompt": "Calculate: 2 + 2 = ", "answer": "4"}]
    (files / "set.csv").write_text("prompt,answer\nCalculate: 1 + 1 = ,2\nCalculate: 2 + 2 = ,4\n")
    (files / "set.jsonl").write_text("".join(json.dumps(r) + "\n" for r in good))
    (files / "changed.csv").write_text("prompt,answer\nCalculate: 1 + 1 = ,2\nCalculate: 2 + 2 = ,5\n")
    (files / "noanswer.csv").write_text("prompt,solution,metadata.operation\nCalculate: 1 + 1 = ,2,+\n")
    pq.write_table(pa.table({"question": ["Calculate: 1 + 1 = "], "solution": ["2"]}), files / "noanswer.parquet")
    (files / "conflict.csv").write_text("prompt,answer\nCalculate: 1 + 1 = ,2\nCalculate: 3 + 3 = ,6\n"
                                        "Calculate: 1 + 1 = ,3\n")  # fmt: skip
    (files / "empty.csv").write_text("")
    pq.write_table(pa.table({"prompt": pa.array([], pa.string()), "answer": pa.array([], pa.string())}),
                   files / "empty.parquet")  # fmt: skip
    (files / "bin.parquet").write_bytes(b"PAR1" + b"\xff" * 64)
    (files / "ragged.csv").write_text("prompt,answer\nCalculate: 1 + 1 = ,2,extra\n")
    (files / "number.json").write_text("42\n")
    (files / "bigint.jsonl").write_text('{"prompt": "p", "answer": ' + "9" * 5000 + "}\n")
    (files / "escape-column.csv").write_text("prompt,\x1b[2Janswer\nCalculate: 1 + 1 = ,2\n")
    os.mkfifo(files / "fifo.csv")
    os.mkfifo(files / "fifo.parquet")
    datasets.disable_progress_bars()
    datasets.Dataset.from_list(good).save_to_disk(str(files / "ds"))
    datasets.Dataset.from_dict({"prompt": [], "answer": []}).save_to_disk(str(files / "ds-empty"))
    shutil.copytree(files / "ds", files / "ds-fifo")
    for arrow in (files / "ds-fifo").glob("*.arrow"):
        arrow.unlink()
        os.mkfifo(arrow)
    SPARSE_DIR.mkdir(exist_ok=True)
    for name in ("huge.parquet", "huge.csv"):
        with open(SPARSE_DIR / name, "wb") as f:
            f.truncate(100 * 2**30)
    shutil.copytree(files / "ds", SPARSE_DIR / "ds")
    for arrow in (SPARSE_DIR / "ds").glob("*.arrow"):
        with open(arrow, "r+b") as f:
            f.truncate(100 * 2**30)
    suites = root / "suites"
    suites.mkdir()
    for name, text in (("orig-v1", (files / "set.jsonl").read_text()), ("damaged-v1", "")):
        rows = [json.loads(line) for line in text.splitlines()]
        data = "".join(json.dumps({**r, "difficulty": "", "operation": "+", "task_type": "arithmetic"},
                                  sort_keys=True) + "\n" for r in rows)  # fmt: skip
        (suites / f"{name}.jsonl").write_text(data + ("tampered\n" if name == "damaged-v1" else ""))
        manifest = {"name": name, "sha256": hashlib.sha256(data.encode()).hexdigest(), "rows": len(rows),
                    "distinct": len(rows), "source": "files/set.jsonl", "kind": "jsonl",
                    "imported_at": "2026-01-05T10:00:00+00:00"}  # fmt: skip
        (suites / f"{name}.json").write_text(json.dumps(manifest))


def test_enough_cases():
    assert len(CASES) >= 150


@pytest.mark.parametrize("args", CASES)
def test_hostile_input_is_one_line_exit_2_and_changes_nothing(arena, monkeypatch, args):
    monkeypatch.chdir(arena)
    monkeypatch.setenv("GRPO_LAB_DB", str(arena / "grpo_lab.db"))
    monkeypatch.setenv("GRPO_LAB_SUITES", str(arena / "suites"))
    before = snapshot(arena)
    result = call(*args)
    lines = result.stderr.splitlines()
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode == 2, result
    assert len(lines) == 1 and lines[0].startswith("grpo-lab: error: "), result.stderr
    assert "uid=" not in result.stdout + result.stderr and "root:x:" not in result.stdout + result.stderr
    assert snapshot(arena) == before
    assert not (arena / "wandb").exists() and not (arena / "files" / "new-out").exists()


def real(*args: bytes | str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GRPO_LAB_DB": str(cwd / "grpo_lab.db")}
    return subprocess.run([sys.executable, "-c", "from grpo_lab.cli import main; main()", *args], cwd=cwd, env=env,
                          capture_output=True, timeout=300)  # fmt: skip


def test_in_a_real_process_too(arena):
    """What only a real process shows: bytes in argv that are not UTF-8, a template run by the console script,
    and a run refused before WandB or the store saw it."""
    before = snapshot(arena)
    for args, message in (
        ((b"note", b"aaaa0001", b"caf\xe9"), b"argument 3 ('caf\\\\udce9') is not valid UTF-8 text"),
        (("journal", "render", "--stdout", "--template", "files/os.md.j2"), b"is unsafe"),
        (
            ("run", "--hypothesis", "h", "--model_name", "tiny-arith", "--temperature", "inf", "--wandb", "offline"),
            b"--temperature must be a finite number (got inf)",
        ),
        (("run", "--preset", "cpu-quick", "--seed", "4294967296", "--hypothesis", "h"), b"--seed must be at most"),
        (("compare", "--db", "files/fifo.jsonl"), b"is not a regular file"),  # and no hang after the line
        (("rerun", "aaaa0001", "--db", "files/fifo.jsonl"), b"is not a regular file"),
    ):
        proc = real(*args, cwd=arena)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count(b"\n") == 1 and message in proc.stderr and b"Traceback" not in proc.stderr
        assert b"uid=" not in proc.stdout
    assert snapshot(arena) == before and not (arena / "wandb").exists()


def test_control_characters_an_older_store_holds_are_printed_as_escapes(tmp_path, monkeypatch):
    """A store written by an older grpo-lab (or another program) may hold escape sequences and bytes that are not
    UTF-8 in its text: every view prints them as visible escapes, never as themselves, and none fails."""
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "grpo_lab.db"
    store = Store(f"sqlite:///{db}")
    store.create_run(Run(
        id="esc00001", exp_name="exp\x1b]0;pwned\x07", status="running", started_at="2026-01-02T10:00:00+00:00",
        host="h", model_name="tiny-arith", hypothesis="clear\x1b[2J the screen", command="grpo-lab run \x1b[31m",
        tags=json.dumps(["t\x9b"]), config=json.dumps({"beta": 0.1, "seed": 1}),
    ))  # fmt: skip
    results = [("before", "arith-v1", "overall", "", 60, 200), ("after", "arith-v1", "overall", "", 80, 200)]
    store.record("esc00001", results=results)
    store.finish_run("esc00001", "finished", metrics=compute([], results, {}), verdict="unchecked",
                     verdict_detail="no \x1b[5m criteria")  # fmt: skip
    store.add_note("esc00001", "a note \x1b[8m hidden", "learning")
    from grpo_lab.store.db import Sweep

    store.create_sweep(
        Sweep(
            id="swp00002",
            name="s",
            hypothesis="sweep \x1b]0;x\x07",
            spec="{}",
            digest="d",
            source="s.toml",
            command="grpo-lab sweep",
            created_at="2026-01-05T10:00:00+00:00",
        ),
        [],
    )
    store.close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE run SET expected = CAST(x'6e6f7420ff7574662d38' AS TEXT)")  # 'not \xffutf-8'
    conn.execute(
        "INSERT INTO sample (run_id, step, idx, prompt, completion, reward, advantage, extracted) VALUES "
        "('esc00001', 1, 0, 'Calculate: 1 + 1 = ', CAST(x'32ff' AS TEXT), 1.0, 0.0, CAST(x'32ff' AS TEXT))"
    )
    conn.commit()
    conn.close()
    monkeypatch.setenv("GRPO_LAB_DB", str(db))
    for args in (["runs"], ["show", "esc00001"], ["compare"], ["compare", "--format", "md"], ["sweep", "list"],
                 ["journal", "render", "--stdout"], ["runs", "--format", "tsv"]):  # fmt: skip
        result = call(*args)
        assert result.returncode == 0, (args, result.stderr)
        shown = result.stdout + result.stderr
        assert "\x1b" not in shown and "\x07" not in shown and "\x9b" not in shown, (args, shown)
    assert "\\x1b[2J" in call("show", "esc00001").stdout.replace("\n", "")
    assert "not \ufffdutf-8" in call("show", "esc00001").stdout
    assert call("report", "--out", "r.html").returncode == 0  # the report's own reads, too
    page = (tmp_path / "r.html").read_text()
    assert (
        "not \ufffdutf-8" in page
        and '[1,0,"Calculate: 1 + 1 = ","2\ufffd",1.0,0.0,"2\ufffd"]' in page
        and "\x1b" not in page
    )


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("args", [["runs"], ["compare", "--sweep", "replication-v3", "--format", "md"]])
def test_output_to_a_full_disk_is_one_line_and_the_store_unchanged(tmp_path, args):
    """stdout on a full device (/dev/full): one line that says what to do, exit 2, no traceback and no
    'Exception ignored' at exit, and the store read is byte-identical."""
    db = tmp_path / "store.db"
    shutil.copy(Path(__file__).parents[1] / "research" / "replication-v3" / "study.db", db)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-c", "from grpo_lab.cli import main; main()", *args, "--db", str(db)],
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "free some space, or send it elsewhere" in proc.stderr, proc.stderr
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
