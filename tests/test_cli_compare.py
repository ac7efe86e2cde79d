import csv
import io
import json

import pytest


def test_compare_formats_through_the_command(cli, recorded_store):
    db, run_id = recorded_store
    plain = cli("compare", "--db", str(db)).stdout.splitlines()  # piped: plain aligned text by default
    assert plain[0] == "1 run" and plain[1].split()[:4] == ["id", "name", "status", "started"]
    assert plain[2].startswith(run_id + "  ") and "|" not in plain[1]
    header, row = cli("compare", "--db", str(db), "--format", "tsv").stdout.splitlines()
    assert header.split("\t") == plain[1].split() and row.split("\t")[0] == run_id
    assert len(row.split("\t")) == len(header.split("\t"))
    md = cli("compare", "--db", str(db), "--format", "md").stdout
    assert md.startswith("| id | name | status | started |") and run_id in md
    rows = json.loads(cli("compare", "--db", str(db), "--format", "json").stdout)
    assert rows[0]["id"] == run_id and 0 <= rows[0]["held_out"] <= 1
    (row,) = list(csv.DictReader(io.StringIO(cli("compare", "--db", str(db), "--format", "csv").stdout)))
    assert float(row["held_out"]) == rows[0]["held_out"]
    titled = cli("compare", "--db", str(db), "--format", "table", env={"COLUMNS": "250"}).stdout
    assert titled.splitlines()[0].strip() == "1 run"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--where", "colour=red"], "unknown field 'colour'"),
        (["--where", "beta=0.1; DROP TABLE run"], "expected 'and' between conditions"),
        (["--format", "xml"], "--format 'xml' is not one of"),
        (["--sort", "nope"], "--sort: no column 'nope'"),
    ],
)
def test_bad_input(cli, recorded_store, args, message):
    db, _ = recorded_store
    proc = cli("compare", "--db", str(db), *args)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_compare_does_not_import_the_training_stack(cli, recorded_store):
    db, _ = recorded_store
    code = (
        f"import sys; from grpo_lab.cli import main; sys.argv=['grpo-lab','compare','--db',{str(db)!r}];\n"
        "try: main()\nexcept SystemExit: pass\n"
        "print('HEAVY', [m for m in ('torch','transformers','trl','datasets') if m in sys.modules])"
    )
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "HEAVY []" in out


def test_a_human_format_shows_a_page_and_says_how_many_runs_there_are(cli, isolated):
    """A store bigger than a page: table, plain and md show the newest 100 (fetched, not cut after decoding all)
    and say on stderr how many the filters selected; --limit 0, tsv, csv and json give every run."""
    from grpo_lab.store.db import Run, Store

    store = Store(str(isolated / "grpo_lab.db"))
    for i in range(130):
        started = f"2026-01-{1 + i // 24:02d}T{i % 24:02d}:00:00+00:00"
        store.create_run(Run(id=f"run{i:05d}", exp_name=f"n{i % 3}", started_at=started, host="h", model_name="m",
                             config=json.dumps({"beta": 0.1 if i % 2 else 0.0})))  # fmt: skip
        store.finish_run(f"run{i:05d}", "finished", metrics={"held_out": i / 200, "held_out_before": 0.1})
    store.close()
    for fmt in ("plain", "md"):
        proc = cli("compare", "--format", fmt)
        ids = [i for i in (f"run{k:05d}" for k in range(130)) if i in proc.stdout]
        assert ids == [f"run{k:05d}" for k in range(30, 130)], fmt  # the newest 100
        assert proc.stderr == "grpo-lab: note: showing the first 100 of 130 runs; --limit 0 shows them all, " \
                              "--limit N that many\n"  # fmt: skip
    filtered = cli("compare", "--where", "beta=0.1 and held_out<0.6")  # 60 odd runs below 0.6: all on one page
    assert filtered.stderr == "" and filtered.stdout.startswith("60 runs")
    filtered = cli("compare", "--where", "held_out>=0.05", "--sort", "held_out")  # runs 10-129, sorted in SQL
    assert "first 100 of 120 runs" in filtered.stderr and filtered.stdout.splitlines()[2].startswith("run00010 ")
    assert "run00109 " in filtered.stdout and "run00110 " not in filtered.stdout
    for args in (["--limit", "0"], ["--format", "tsv"], ["--format", "json"]):
        proc = cli("compare", *args)
        assert proc.returncode == 0 and proc.stderr == "" and all(f"run{k:05d}" in proc.stdout for k in range(130))
    assert len(json.loads(cli("compare", "--format", "json", "--limit", "7").stdout)) == 7
    assert cli("compare", "--limit", "7").stdout.startswith("7 runs")


def test_a_selection_that_matches_nothing_says_so(cli, recorded_store):
    db, _ = recorded_store
    proc = cli("compare", "--db", str(db), "--where", "beta = 5")
    assert proc.returncode == 0 and proc.stdout == ""
    assert proc.stderr == "grpo-lab: note: no run matches --where beta = 5; `grpo-lab runs` lists the runs there are\n"
    assert cli("compare", "--db", str(db), "--where", "beta = 5", "--format", "json").stdout == "[]\n"
