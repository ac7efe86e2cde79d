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


def test_the_resolved_command_prints_on_one_line_and_runs_as_written(cli, isolated):
    """At 80 columns too: one line each (a terminal wraps it softly, and a paste gives it back whole), and a run
    recorded before resolved commands carried --hypothesis gets it from the record, so `run` accepts it."""
    import json
    import shlex

    from grpo_lab.store.db import Run, Store, iso, now

    store = Store(f"sqlite:///{isolated / 'grpo_lab.db'}")
    old = "grpo-lab run --model_name tiny-arith --n_samples 32 --batch_size 16 --num_generations 4 --max_steps 2"
    store.create_run(Run(id="old00001", exp_name="x", status="running", started_at=iso(now()), host="h",
                         model_name="tiny-arith", hypothesis="beta 0.1 beats 0", criteria="steps = 2",
                         resolved_command=old, config=json.dumps({"beta": 0.1})))  # fmt: skip
    store.finish_run("old00001", "finished")
    out = cli("show", "old00001", env={"COLUMNS": "80"}).stdout
    (line,) = [line for line in out.splitlines() if line.startswith("resolved command ")]
    assert line == f"resolved command {old} --hypothesis 'beta 0.1 beats 0' --criteria 'steps = 2'"
    args = shlex.split(line.removeprefix("resolved command "))[1:]
    dry = cli(*args, "--dry_run", env={"COLUMNS": "200"})
    assert dry.returncode == 0 and "hypothesis beta 0.1 beats 0" in dry.stdout, dry.stderr
