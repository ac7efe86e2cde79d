def test_diff_shows_two_runs_side_by_side(cli, recorded_store):
    db, run_id = recorded_store
    assert cli("eval", "--model_name", "tiny-arith", "--suite", "arith-v1", "--db", str(db)).returncode == 0
    import sqlite3

    eval_id = sqlite3.connect(db).execute("SELECT id FROM run WHERE kind='eval'").fetchone()[0]
    proc = cli("diff", run_id[:5], eval_id, "--db", str(db), env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    for text in ("Configuration", "Results", "held_out", "beta", run_id, eval_id):
        assert text in proc.stdout


def test_diff_unknown_run(cli, recorded_store):
    db, run_id = recorded_store
    proc = cli("diff", run_id, "zzzz", "--db", str(db))
    assert proc.returncode == 2 and "no run with ID 'zzzz'" in proc.stderr
