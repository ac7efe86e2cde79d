import sqlite3


def test_notes_are_added_after_the_fact(cli, recorded_store):
    db, run_id = recorded_store
    assert cli("note", run_id[:4], "reached 55%", "--kind", "result", "--db", str(db)).returncode == 0
    assert cli("note", run_id, "beta matters", "--kind", "learning", "--db", str(db)).returncode == 0
    notes = sqlite3.connect(db).execute("SELECT seq, kind, text FROM note WHERE run_id = ?", (run_id,)).fetchall()
    assert notes[-2:] == [(notes[-2][0], "result", "reached 55%"), (notes[-1][0], "learning", "beta matters")]
    assert "beta matters" in cli("show", run_id, "--db", str(db)).stdout


def test_bad_kind_and_unknown_run(cli, recorded_store):
    db, run_id = recorded_store
    proc = cli("note", run_id, "x", "--kind", "rumour", "--db", str(db))
    assert proc.returncode == 2 and "--kind 'rumour' is not one of: result, learning, comment" in proc.stderr
    proc = cli("note", "nope", "x", "--db", str(db))
    assert proc.returncode == 2 and "no run with ID 'nope'" in proc.stderr
