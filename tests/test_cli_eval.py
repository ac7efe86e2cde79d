"""`grpo-lab eval`: any model on the standard suites, recorded as an evaluation-only entry."""

import sqlite3

import pytest


def test_eval_records_an_evaluation_only_entry_with_every_prediction(cli, isolated):
    proc = cli("eval", "--model_name", "tiny-arith", "--suite", "arith-v1", "--suite", "mixed-v1")
    assert proc.returncode == 0, proc.stderr
    conn = sqlite3.connect(isolated / "grpo_lab.db")
    (run_id, kind, status, checksum) = conn.execute("SELECT id, kind, status, model_checksum FROM run").fetchone()
    assert (kind, status) == ("eval", "finished") and len(checksum) == 64
    n = dict(conn.execute("SELECT split, count(*) FROM prediction GROUP BY split").fetchall())
    assert n == {"arith-v1": 200, "mixed-v1": 100}
    row = conn.execute("SELECT prompt, completion, extracted, correct FROM prediction WHERE split='arith-v1' "
                       "AND idx=0").fetchone()  # fmt: skip
    assert row[0] == "Calculate: 2 + 2 = " and row[2] is not None
    overall = conn.execute(
        "SELECT correct, total FROM result WHERE split='arith-v1' AND dimension='overall'"
    ).fetchone()
    assert overall[1] == 200 and f"{overall[0] / 2:.1f}%" in proc.stdout
    assert f"evaluation {run_id} recorded" in proc.stdout


def test_the_recorded_command_reproduces_the_evaluation(cli, isolated, tmp_path):
    """The eval's configuration is recorded whole (EvalConfig), and its command reruns it: same flags, the
    threads it used, a user suite by its absolute path, and the same predictions."""
    import json
    import shlex

    suite = tmp_path / "mine.jsonl"
    suite.write_text('{"prompt": "Calculate: 3 + 4 = ", "answer": "7", "task_type": "arithmetic", "operation": "+"}\n')
    proc = cli("eval", "--model_name", "tiny-arith", "--suite", "mixed-v1", "--suite", str(suite), "--threads", "1",
               "--batch_size", "32")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    conn = sqlite3.connect(isolated / "grpo_lab.db")
    command, config = conn.execute("SELECT resolved_command, config FROM run").fetchone()
    assert json.loads(config) == {"model_name": "tiny-arith", "suites": ["mixed-v1", str(suite)],
                                  "suite_fields": None, "eval_batch_size": 32, "max_new_tokens": 16,
                                  "threads": 1}  # fmt: skip
    args = shlex.split(command)
    assert args[:2] == ["grpo-lab", "eval"] and args.count("--suite") == 2 and "--threads" in args
    assert cli(*args[1:]).returncode == 0
    runs = [r[0] for r in conn.execute("SELECT id FROM run ORDER BY started_at")]
    outputs = [conn.execute("SELECT split, idx, completion FROM prediction WHERE run_id=? ORDER BY split, idx",
                            (i,)).fetchall() for i in runs]  # fmt: skip
    assert len(runs) == 2 and outputs[0] == outputs[1] and len(outputs[0]) == 101


def test_eval_twice_gives_identical_predictions(cli, isolated):
    for _ in range(2):
        assert cli("eval", "--model_name", "tiny-arith", "--suite", "mixed-v1").returncode == 0
    conn = sqlite3.connect(isolated / "grpo_lab.db")
    ids = [r[0] for r in conn.execute("SELECT id FROM run")]
    outputs = [conn.execute("SELECT completion FROM prediction WHERE run_id=? ORDER BY idx", (i,)).fetchall()
               for i in ids]  # fmt: skip
    assert outputs[0] == outputs[1]


def test_eval_of_a_runs_saved_model(cli, recorded_store):
    db, run_id = recorded_store
    proc = cli("eval", "--model_name", f"run:{run_id[:5]}", "--suite", "mixed-v1", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    model_name = sqlite3.connect(db).execute("SELECT model_name FROM run WHERE kind='eval'").fetchone()[0]
    assert model_name == f"run:{run_id[:5]}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model_name", "tiny-arith", "--suite", "arith-v9"], "unknown suite 'arith-v9'"),
        (["--model_name", "run:zzzz"], "no grpo-lab store at"),  # a run's model needs the store it is in
        (["--model_name", "./no/such/model"], "no model directory at ./no/such/model"),
        (["--model_name", "tiny-arith", "--threads", "-1"], "--threads must be at least 1 (got -1)"),
        (["--model_name", "tiny-arith", "--threads", "0"], "--threads must be at least 1 (got 0)"),
        (["--model_name", "tiny-arith", "--batch_size", "0"], "--batch_size must be at least 1 (got 0)"),
        (["--model_name", " "], "--model_name is empty"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(cli, isolated, args, message):
    proc = cli("eval", *args)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    db = isolated / "grpo_lab.db"
    assert not db.exists() or sqlite3.connect(db).execute("SELECT count(*) FROM run").fetchone()[0] == 0


def test_run_reference_without_a_saved_model(cli, isolated):
    from grpo_lab.store.db import Run, Store, iso, now

    Store(f"sqlite:///{isolated / 'grpo_lab.db'}").create_run(
        Run(id="nomodel1", exp_name="x", started_at=iso(now()), host="h", model_name="m", output_dir="gone")
    )
    proc = cli("eval", "--model_name", "run:nomodel1")
    assert proc.returncode == 2 and "run nomodel1 has no saved model" in proc.stderr


def start_slow_eval(isolated, **env):
    """An evaluation of about 10 s (one prompt per generate call), once its row is written."""
    import os
    import subprocess
    import sys
    import time

    cmd = [sys.executable, "-m", "grpo_lab", "eval", "--model_name", "tiny-arith", "--suite", "arith-v1",
           "--suite", "mixed-v1", "--batch_size", "1", "--threads", "1"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})  # fmt: skip
    db = isolated / "grpo_lab.db"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if sqlite3.connect(db).execute("SELECT count(*) FROM run").fetchone()[0]:
                return proc, db
        except sqlite3.OperationalError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the evaluation wrote no row within 60 s")


@pytest.mark.slow
def test_a_long_eval_is_never_reaped_while_alive_and_sigterm_interrupts_it(isolated, monkeypatch):
    """With a 0.3 s heartbeat and a 1.5 s stale limit, a command on another host (which cannot see the pid)
    reaps every running row whose heartbeat stopped: the evaluation's never stops while it works."""
    import signal
    import time

    from grpo_lab.store.db import Store

    monkeypatch.setenv("GRPO_LAB_STALE_SECONDS", "1.5")
    proc, db = start_slow_eval(isolated, GRPO_LAB_HEARTBEAT_SECONDS="0.3", GRPO_LAB_STALE_SECONDS="1.5")
    store = Store(f"sqlite:///{db}")
    for _ in range(10):
        time.sleep(0.4)
        assert store.reap(host="another-host") == []
    assert store.runs()[0].run.status == "running" and proc.poll() is None  # still evaluating: the test is valid
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    run = store.runs()[0].run
    assert (run.status, run.error) == ("interrupted", "terminated by SIGTERM") and run.finished_at
    assert err.strip().splitlines()[-1].startswith(f"grpo-lab: error: evaluation {run.id} interrupted")


@pytest.mark.slow
def test_ctrl_c_interrupts_an_eval_with_130(isolated):
    import signal

    proc, db = start_slow_eval(isolated)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    (status, error) = sqlite3.connect(db).execute("SELECT status, error FROM run").fetchone()
    assert (status, error) == ("interrupted", "interrupted by Ctrl-C")
