import csv
import io
import json

import pytest


def test_compare_formats_through_the_command(cli, recorded_store):
    db, run_id = recorded_store
    plain = cli("compare", "--db", str(db)).stdout.splitlines()  # piped: plain aligned text by default
    assert plain[0] == "1 runs" and plain[1].split()[:4] == ["id", "name", "status", "started"]
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
    assert "1 runs" in cli("compare", "--db", str(db), "--format", "table", env={"COLUMNS": "250"}).stdout


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
