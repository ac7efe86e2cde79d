"""What `grpo-lab run` records, read back with Python's plain sqlite3, and how every ending is recorded."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime

import pytest

from grpo_lab.models import tiny_path

QUICK = ["--model_name", "tiny-arith", "--n_samples", "32", "--batch_size", "16", "--num_generations", "4",
         "--learning_rate", "5e-5", "--eval_samples", "20", "--wandb", "disabled"]  # fmt: skip


def rows(db, sql, *args):
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, args)]
    finally:
        conn.close()


def only_run(db):
    (run,) = rows(db, "SELECT * FROM run")
    return run


def test_a_run_records_every_field(cli, isolated):
    proc = cli("run", *QUICK, "--max_steps", "3", "--hypothesis", "beta keeps it stable", "--expected", "small gain",
               "--criteria", "held-out up", "--tags", "a,b", "--exp_name", "rec_test")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    db = isolated / "grpo_lab.db"
    run = only_run(db)
    assert len(run["id"]) == 8 and run["id"].isalnum()
    assert (run["exp_name"], run["status"], run["kind"]) == ("rec_test", "finished", "train")
    assert (run["hypothesis"], run["expected"], run["criteria"]) == (
        "beta keeps it stable",
        "small gain",
        "held-out up",
    )
    assert json.loads(run["tags"]) == ["a", "b"]
    assert (
        run["command"].startswith("grpo-lab run --model_name tiny-arith") and "'beta keeps it stable'" in run["command"]
    )
    config = json.loads(run["config"])
    assert config["batch_size"] == 16 and config["beta"] == 0.1 and config["epochs"] == 50  # defaults included
    assert "--epochs 50" in run["resolved_command"] and "--max_steps 3" in run["resolved_command"]
    started, finished = datetime.fromisoformat(run["started_at"]), datetime.fromisoformat(run["finished_at"])
    assert started.tzinfo is not None and finished >= started
    assert run["duration_s"] > 0 and 0 < run["train_seconds"] <= run["duration_s"]
    assert run["host"] and run["pid"] and run["heartbeat_at"]
    assert {"python", "torch", "transformers", "trl", "grpo-lab"} <= set(json.loads(run["versions"]))
    assert run["git_commit"] is None and run["git_dirty"] is None  # the test's cwd is not a git work tree
    assert run["model_name"] == "tiny-arith" and len(run["model_checksum"]) == 64
    assert run["wandb_mode"] == "disabled" and run["error"] is None
    saved = isolated / run["output_dir"]  # runs/<id>, relative to where the run was started
    assert run["output_dir"] == f"runs/{run['id']}"
    assert (saved / "model.safetensors").stat().st_size > 0 and (saved / "config.json").is_file()
    assert (saved / "tokenizer_config.json").is_file()
    # the per-step curve: everything TRL logs
    steps = rows(db, "SELECT * FROM step ORDER BY step")
    assert [s["step"] for s in steps] == [1, 2, 3]
    metrics = json.loads(steps[-1]["metrics"])
    for key in ("reward", "reward_std", "frac_reward_zero_std", "kl", "loss", "grad_norm", "entropy",
                "completions/mean_length", "learning_rate", "epoch"):  # fmt: skip
        assert key in metrics, key
    # sample completions with their rewards, each logging step
    samples = rows(db, "SELECT * FROM sample")
    assert {s["step"] for s in samples} == {1, 2, 3}
    assert all(s["prompt"].startswith("Calculate: ") and s["reward"] in (1.0, -1.0) for s in samples)
    # results: per split, stage and group
    results = rows(db, "SELECT * FROM result")
    keys = {(r["stage"], r["split"], r["dimension"], r["grp"]) for r in results}
    for stage in ("before", "after"):
        for split in ("train", "held_out", "arith-v1"):
            assert (stage, split, "overall", "") in keys
            assert {(stage, split, "operation", op) for op in "+-*"} <= keys
    train_overall = [r for r in results if (r["stage"], r["split"], r["dimension"]) == ("after", "train", "overall")]
    assert train_overall[0]["total"] == 32
    assert {(stage, "arith-v1", "difficulty", "very_hard") for stage in ("before", "after")} <= keys
    # every evaluated prompt's completion and extracted answer
    counts = {(r["stage"], r["split"]): r["n"] for r in rows(db, "SELECT stage, split, count(*) AS n FROM prediction "
                                                                  "GROUP BY stage, split")}  # fmt: skip
    assert counts == {(st, sp): n for st in ("before", "after") for sp, n in (("train", 32), ("held_out", 20),
                                                                              ("arith-v1", 200))}  # fmt: skip
    metrics = {r["name"]: r["value"] for r in rows(db, "SELECT name, value FROM metric WHERE run_id = ?", run["id"])}
    assert metrics["steps"] == 3 and "held_out" in metrics and "zero_std" in metrics and "final_reward" in metrics
    assert "arith-v1" in metrics and "arith-v1[+]" in metrics and metrics["arith-v1_overlap"] == 0
    assert json.loads(run["summary"]) == metrics  # the same numbers, as JSON, for plain sqlite3 readers
    assert run["suites_disjoint"] == 1 and run["verdict"] == "unchecked"


def test_offline_wandb_run_id_is_the_recorded_id(cli, isolated):
    args = [a for a in QUICK if a not in ("--wandb", "disabled")]
    proc = cli("run", *args, "--max_steps", "1", "--hypothesis", "h", "--wandb", "offline",
               env={"WANDB_MODE": None, "WANDB_SILENT": "true"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run = only_run(isolated / "grpo_lab.db")
    (offline_dir,) = (isolated / "wandb").glob("offline-run-*")
    assert offline_dir.name.endswith(f"-{run['id']}")
    assert run["wandb_mode"] == "offline" and run["wandb_dir"] == str(offline_dir)
    assert f"wandb sync {offline_dir}" in proc.stdout


def test_a_piped_log_holds_grpo_labs_lines_only(cli, isolated):
    """Piped to a file, WandB prints no sparkline summary nor banner of its own (WANDB_SILENT is not set here),
    and no library draws a progress bar (tqdm's, as a GGUF checkpoint's conversion would)."""
    args = [a for a in QUICK if a not in ("--wandb", "disabled")]
    proc = cli("run", *args, "--max_steps", "2", "--hypothesis", "h", "--wandb", "offline", "--eval_suite", "none",
               env={"WANDB_MODE": None, "WANDB_SILENT": None})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    log = proc.stdout + proc.stderr
    assert "wandb:" not in log and "Run history" not in log and "▁" not in log and "it/s]" not in log, log
    assert "wandb is offline; to upload: wandb sync " in proc.stdout
    # a progress bar any library makes in a piped command is off (a GGUF checkpoint's conversion draws one)
    probe = (
        "import atexit, sys; from grpo_lab.cli import main; sys.argv = ['grpo-lab', '--version']; "
        "atexit.register(lambda: print('bar off:', __import__('tqdm.auto').auto.tqdm(range(3)).disable)); main()"
    )
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           env={k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"})  # fmt: skip
    assert "bar off: True" in shown.stdout, shown.stdout + shown.stderr


def start_long_run(isolated, *extra, args=QUICK, **popen):
    cmd = [sys.executable, "-c", "from grpo_lab.cli import main; main()", "run", *args, "--max_steps", "2000",
           "--hypothesis", "long", *extra]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    db = isolated / "grpo_lab.db"
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until some training steps are in the store
        if db.exists():
            try:
                if rows(db, "SELECT count(*) AS n FROM step")[0]["n"] > 0:
                    return proc, db
            except sqlite3.OperationalError:
                pass
        time.sleep(0.5)
    proc.kill()
    raise AssertionError("no steps recorded within 120 s")


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code", "error"), [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")])
def test_interrupts_are_recorded_and_keep_everything(isolated, sig, code, error):
    tmp = isolated / "tmp"
    tmp.mkdir()
    proc, db = start_long_run(isolated, env={**os.environ, "TMPDIR": str(tmp)})
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert list(tmp.iterdir()) == []  # its private temporary folder went with it
    run = only_run(db)
    assert run["status"] == "interrupted" and error in run["error"] and run["finished_at"]
    assert rows(db, "SELECT count(*) AS n FROM step")[0]["n"] > 0
    assert rows(db, "SELECT count(*) AS n FROM result WHERE stage = 'before'")[0]["n"] > 0
    assert err.strip().splitlines()[-1].startswith("grpo-lab: error: run ")


SIGNAL_WHILE_THE_FOLDER_GOES = """
import os, shutil, sys
import grpo_lab.processes
from grpo_lab.cli import main
real, signum = shutil.rmtree, int(sys.argv[1])
def rmtree(path, *args, **kwargs):  # the signal lands just as the command's own folder is removed
    if os.path.basename(path).startswith(grpo_lab.processes.PREFIX):
        os.kill(os.getpid(), signum)
    real(path, *args, **kwargs)
grpo_lab.processes.shutil.rmtree = rmtree
sys.argv = ["grpo-lab", *sys.argv[2:]]
main()
"""


@pytest.mark.parametrize(("sig", "args"), [(signal.SIGINT, ["models"]), (signal.SIGTERM, ["show", "nosuchrun"])])
def test_a_signal_while_the_temporary_folder_goes_waits_for_it(isolated, sig, args):
    """The command is over (done, or failed with its one line) and a Ctrl-C or SIGTERM lands while its temporary
    folder is removed (CI once saw a KeyboardInterrupt traceback there): the folder still goes, no traceback, and
    the exit code is the signal's."""
    tmp = isolated / "tmp"
    tmp.mkdir()
    cmd = [sys.executable, "-c", SIGNAL_WHILE_THE_FOLDER_GOES, str(int(sig)), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TMPDIR": str(tmp)}, timeout=120)
    assert proc.returncode == 128 + sig, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    assert list(tmp.iterdir()) == []


@pytest.mark.slow
def test_ctrl_c_again_and_again_prints_no_traceback(isolated):
    """A terminal's Ctrl-C reaches the whole process group (WandB's service too), again while the run records
    its ending, closes WandB and runs exit hooks: the record is kept and the last line is still ours."""
    args = [a for a in QUICK if a not in ("--wandb", "disabled")] + ["--wandb", "offline"]
    env = {k: v for k, v in os.environ.items() if k != "WANDB_MODE"}
    proc, db = start_long_run(isolated, args=args, start_new_session=True, env=env)
    for _ in range(6):
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.05)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (130, -signal.SIGINT), err  # -2: the last press landed as Python shut down
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert err.strip().splitlines()[-1].startswith("grpo-lab: error: "), err
    run = only_run(db)
    assert run["status"] == "interrupted" and run["finished_at"]


@pytest.mark.slow
def test_a_killed_run_is_marked_crashed_by_the_next_command(cli, isolated):
    proc, db = start_long_run(isolated)
    proc.kill()
    proc.wait()
    assert only_run(db)["status"] == "running"
    assert cli("runs").returncode == 0
    run = only_run(db)
    assert run["status"] == "crashed" and "process is gone" in run["error"]
    assert rows(db, "SELECT count(*) AS n FROM step")[0]["n"] > 0


def test_a_failure_is_recorded_with_its_error(cli, isolated):
    broken = isolated / "broken-model"
    shutil.copytree(tiny_path(), broken)
    (broken / "model.safetensors").write_bytes(b"not weights")
    proc = cli("run", *QUICK, "--max_steps", "1", "--hypothesis", "h", "--model_name", str(broken))
    assert proc.returncode == 1
    run = only_run(isolated / "grpo_lab.db")
    assert run["status"] == "failed" and run["error"] and run["finished_at"]
    assert proc.stderr.strip().splitlines()[-1].startswith(f"grpo-lab: error: run {run['id']} failed:")


@pytest.mark.parametrize("args", [["--batch_size", "10"], ["--model_name", "./nope"], ["--wandb", "sometimes"]])
def test_bad_input_writes_nothing_to_the_store(cli, isolated, args):
    proc = cli("run", *QUICK, "--hypothesis", "h", *args)
    assert proc.returncode == 2
    db = isolated / "grpo_lab.db"
    assert not db.exists() or rows(db, "SELECT count(*) AS n FROM run")[0]["n"] == 0


def test_no_secrets_in_the_store(cli, isolated):
    secret = "sk-very-secret-value-123"
    proc = cli("run", *QUICK, "--max_steps", "1", "--hypothesis", "h",
               env={"WANDB_API_KEY": secret, "HF_TOKEN": secret, "GRPO_LAB_PASSWORD": secret})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    db = isolated / "grpo_lab.db"
    sqlite3.connect(db).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    assert secret.encode() not in db.read_bytes()
    env = json.loads(only_run(db)["environment"])
    assert env["WANDB_API_KEY"] == "***" and env["HF_TOKEN"] == "***"


def test_db_flag_and_env_choose_the_store(cli, isolated):
    # GRPO_LAB_DB names grpo_lab.db (the fixture sets it); --db wins over it
    proc = cli("run", *QUICK, "--max_steps", "1", "--hypothesis", "h", "--db", "custom.db")
    assert proc.returncode == 0, proc.stderr
    assert (isolated / "custom.db").exists() and not (isolated / "grpo_lab.db").exists()
    (run_id,) = [r["id"] for r in rows(isolated / "custom.db", "SELECT id FROM run")]
    # without --db, GRPO_LAB_DB chooses the store: another file shows no runs, custom.db shows this one
    assert run_id not in cli("runs", env={"GRPO_LAB_DB": str(isolated / "other.db")}).stdout
    assert run_id in cli("runs", env={"GRPO_LAB_DB": str(isolated / "custom.db"), "COLUMNS": "200"}).stdout
