def test_show_prints_the_whole_run(cli, recorded_store):
    db, run_id = recorded_store
    out = cli("show", run_id[:5], "--db", str(db), env={"COLUMNS": "200"}).stdout
    for text in (run_id, "a recorded run", "resolved command", "Greedy accuracy", "Training curve (2 steps)",
                 "Sample completions", "Configuration", "tiny-arith", "held_out"):  # fmt: skip
        assert text in out, text


def test_show_prints_the_diagnostics(cli, isolated):
    import json

    from grpo_lab.store.db import Run, Store, iso, now

    store = Store(f"sqlite:///{isolated / 'grpo_lab.db'}")
    store.create_run(Run(
        id="diag0001", exp_name="x", status="running", started_at=iso(now()), host="h", model_name="m",
        config=json.dumps({"beta": 0, "num_generations": 4}),
    ))  # fmt: skip
    store.finish_run("diag0001", "finished", metrics={"zero_std": 0.9}, verdict="rejected", verdict_detail="kl 2 > 1")
    out = cli("show", "diag0001", env={"COLUMNS": "250"}).stdout
    assert "warning no-kl: beta = 0" in out and "warning few-generations" in out and "warning zero-std" in out
    assert "verdict     rejected (kl 2 > 1)" in out


def test_show_unknown_run_is_one_line_exit_2(cli, recorded_store):
    db, _ = recorded_store
    proc = cli("show", "zzzz", "--db", str(db))
    assert proc.returncode == 2
    assert proc.stderr.strip() == "grpo-lab: error: no run with ID 'zzzz'; `grpo-lab runs` lists them"


def test_brackets_in_user_text_are_shown_not_parsed(cli, recorded_store):
    db, run_id = recorded_store
    assert cli("note", run_id, "try [bold]x[/] and [/]", "--db", str(db)).returncode == 0
    proc = cli("show", run_id, "--db", str(db), env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    assert "try [bold]x[/] and [/]" in proc.stdout
