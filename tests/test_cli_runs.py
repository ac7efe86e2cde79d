import csv
import io
import json

from grpo_lab.store.db import Run, Store


def test_runs_lists_newest_first(cli, recorded_store):
    db, run_id = recorded_store
    out = cli("runs", "--db", str(db), "--format", "table", env={"COLUMNS": "200"}).stdout
    assert "Runs, newest first" in out
    assert run_id in out and "finished" in out and "recorded" in out and "a recorded run" in out
    assert "->" in out  # held-out accuracy before -> after


def test_runs_formats_and_order_match_compare(cli, isolated):
    store = Store(str(isolated / "grpo_lab.db"))
    for i in range(3):
        store.create_run(Run(id=f"run{i:05d}", exp_name=f"n{i}", started_at=f"2026-01-0{i + 1}T00:00:00+00:00",
                             host="h", model_name="m", hypothesis="h | pipe"))  # fmt: skip
        store.finish_run(f"run{i:05d}", "finished", metrics={"held_out": 0.5 + i / 10, "held_out_before": 0.4})
    store.close()
    rows = json.loads(cli("runs", "--format", "json").stdout)
    assert [r["id"] for r in rows] == ["run00002", "run00001", "run00000"]
    assert rows[0]["held_out"] == 0.7 and rows[0]["held_out_before"] == 0.4 and rows[0]["hypothesis"] == "h | pipe"
    compared = json.loads(cli("compare", "--format", "json").stdout)
    assert [r["id"] for r in compared] == [r["id"] for r in rows]  # one order for both
    (first, *_) = list(csv.DictReader(io.StringIO(cli("runs", "--format", "csv", "-n", "1").stdout)))
    assert first["id"] == "run00002" and float(first["held_out"]) == 0.7
    md = cli("runs", "--format", "md").stdout.splitlines()
    assert md[2].startswith("| id | status |") and "40.0% -> 70.0%" in md[4] and "h / pipe" in md[4]
    assert len(cli("runs", "-n", "2", "--format", "md").stdout.strip().splitlines()) == 2 + 2 + 2
    bad = cli("runs", "--format", "xml")
    assert (
        bad.returncode == 2
        and bad.stderr.strip() == "grpo-lab: error: --format 'xml' is not one of: table, plain, tsv, md, csv, json"
    )


def test_runs_on_an_empty_store_says_where_it_is(cli, isolated):
    Store(str(isolated / "grpo_lab.db")).close()
    proc = cli("runs")
    assert proc.returncode == 0 and proc.stdout == ""  # no empty table: the note says why there is nothing
    assert cli("runs", "--format", "csv").stdout.startswith("id,status,name,")  # a program still gets the header
    assert (
        proc.stderr.strip()
        == f"grpo-lab: note: the store {isolated / 'grpo_lab.db'} (from $GRPO_LAB_DB) holds no runs yet"
    )


def test_runs_refuses_a_file_that_is_not_a_store(cli, isolated):
    (isolated / "x.db").write_text("hello")
    proc = cli("runs", "--db", "x.db")
    assert proc.returncode == 2 and proc.stderr.startswith(
        f"grpo-lab: error: {isolated / 'x.db'} is not a grpo-lab store"
    )
    assert (isolated / "x.db").read_text() == "hello"
