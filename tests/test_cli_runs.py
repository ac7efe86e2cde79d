def test_runs_lists_newest_first(cli, recorded_store):
    db, run_id = recorded_store
    out = cli("runs", "--db", str(db), env={"COLUMNS": "200"}).stdout
    assert run_id in out and "finished" in out and "recorded" in out and "a recorded run" in out


def test_runs_on_an_empty_store(cli):
    proc = cli("runs")
    assert proc.returncode == 0 and proc.stdout.split()[:3] == ["id", "status", "name"]  # piped: the header


def test_runs_refuses_a_file_that_is_not_a_store(cli, isolated):
    (isolated / "x.db").write_text("hello")
    proc = cli("runs", "--db", "x.db")
    assert proc.returncode == 2 and proc.stderr.startswith("grpo-lab: error: x.db is not a grpo-lab store")
    assert (isolated / "x.db").read_text() == "hello"
