"""One run on several processes through accelerate's launcher (DDP over gloo on CPU): only the main process
records, evaluation covers every problem once, and every ending is recorded."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import sql_rows as rows

from grpo_lab import tasks
from grpo_lab.launch import free_port, launcher_args
from grpo_lab.suites import load_suite

QUICK = ["--model_name", "tiny-arith", "--n_samples", "32", "--batch_size", "16", "--num_generations", "4",
         "--eval_samples", "20", "--wandb", "disabled", "--threads", "1"]  # fmt: skip


def accelerate_launch(*args: str) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", *launcher_args(2, free_port()), "-m", "grpo_lab",
            "run", *args]  # fmt: skip


def env(**values):
    return {k: v for k, v in {**os.environ, **values}.items() if v is not None}


def wait_for_steps(proc, db, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the launcher exited {proc.returncode} before training:\n{proc.stderr.read()}")
        try:
            if rows(db, "SELECT count(*) FROM step")[0][0] > 0:
                return
        except sqlite3.OperationalError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise AssertionError(f"no steps recorded within {timeout} s")


@pytest.mark.slow
def test_two_processes_record_one_run_with_every_problem_evaluated_once(isolated):
    proc = subprocess.run(
        accelerate_launch("--preset", "cpu-quick", "--max_steps", "3", "--n_samples", "64", "--eval_samples", "50",
                          "--threads", "1", "--wandb", "offline",
                          "--hypothesis", "ddp records once"),  # fmt: skip
        capture_output=True, text=True, timeout=600, env=env(WANDB_MODE=None, WANDB_SILENT="true"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    db = isolated / "grpo_lab.db"
    ((run_id, status, command, resolved, config),) = rows(
        db, "SELECT id, status, command, resolved_command, config FROM run"
    )
    assert status == "finished"
    (offline,) = (isolated / "wandb").glob("offline-run-*")
    assert offline.name.endswith(f"-{run_id}")
    assert [s for (s,) in rows(db, "SELECT step FROM step ORDER BY step")] == [1, 2, 3]
    assert {s for (s,) in rows(db, "SELECT DISTINCT step FROM sample")} == {1, 2, 3}
    assert command.startswith("accelerate launch --num_processes 2 -m grpo_lab run --preset cpu-quick")
    assert "--num_processes 2" in resolved and json.loads(config)["num_processes"] == 2
    # every problem of every split evaluated once, before and after: the shards were gathered
    sizes = {"train": 64, "held_out": 50, "arith-v1": len(load_suite("arith-v1"))}
    totals = rows(db, "SELECT stage, split, total FROM result WHERE dimension = 'overall'")
    assert sorted(totals) == sorted((stage, split, n) for stage in ("before", "after") for split, n in sizes.items())
    prompts = [p for (p,) in rows(db, "SELECT prompt FROM prediction WHERE stage='after' AND split='arith-v1' "
                                      "ORDER BY idx")]  # fmt: skip
    assert prompts == [p.prompt for p in load_suite("arith-v1")]  # in the suite's order, none twice
    train = tasks.generate_problems("arithmetic", 64, 0, 20, 42)
    assert [p for (p,) in rows(db, "SELECT prompt FROM prediction WHERE stage='before' AND split='train' "
                                   "ORDER BY idx")] == [p.prompt for p in train]  # fmt: skip


def started_by(pid: int) -> list[int]:
    """The processes a grpo-lab process started as the ones that die with it (GRPO_LAB_PARENT names it)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"GRPO_LAB_PARENT={pid}".encode() in environ:
            found.append(int(entry.name))
    return found


def wait_gone(pids: list[int], seconds: float = 10) -> list[int]:
    from grpo_lab.store.sqlite_read import pid_alive

    deadline = time.time() + seconds
    while any(pid_alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.05)
    return [p for p in pids if pid_alive(p)]


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code", "error"), [(signal.SIGINT, 130, "interrupted by Ctrl-C"),
                                                    (signal.SIGTERM, 143, "terminated by SIGTERM")])  # fmt: skip
def test_ctrl_c_or_sigterm_to_the_launcher_interrupts_the_run_in_one_line(isolated, sig, code, error):
    """`grpo-lab run --num_processes 2` runs accelerate's launcher in its own process (same pid): Ctrl-C or SIGTERM
    to it ends the run as interrupted, recorded as typed, with the exit code and the one line of one process, and
    nothing left running or in the temporary folder."""
    tmp = isolated / "tmp"
    tmp.mkdir()
    cmd = [sys.executable, "-m", "grpo_lab", "run", "--num_processes", "2", *QUICK, "--max_steps", "2000",
           "--hypothesis", "stopped"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env(TMPDIR=str(tmp)))
    db = isolated / "grpo_lab.db"
    wait_for_steps(proc, db)
    ranks = started_by(proc.pid)
    assert len(ranks) == 2
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    ((run_id, status, got, command),) = rows(db, "SELECT id, status, error, command FROM run")
    assert proc.returncode == code, err
    assert err.splitlines() == [f"grpo-lab: error: run {run_id} interrupted: {error} (recorded in the store)"]
    assert (status, got) == ("interrupted", error)
    assert command.startswith("grpo-lab run --num_processes 2 --model_name tiny-arith")
    assert rows(db, "SELECT count(*) FROM step")[0][0] > 0
    assert wait_gone(ranks) == [] and list(tmp.iterdir()) == []  # no torchelastic_*, no tmp*wandb-*


def rank_of(pid: int) -> int:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return int(next(v for v in environ if v.startswith(b"RANK=")).split(b"=")[1])


@pytest.mark.slow
def test_a_rank_killed_with_sigkill_fails_the_run(isolated):
    proc = subprocess.Popen(accelerate_launch(*QUICK, "--max_steps", "2000", "--hypothesis", "killed"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    db = isolated / "grpo_lab.db"
    wait_for_steps(proc, db)
    workers = [int(p) for p in subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                              text=True).stdout.split()]  # fmt: skip
    (other,) = [p for p in workers if rank_of(p) == 1]
    os.kill(other, signal.SIGKILL)
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    ((status, error),) = rows(db, "SELECT status, error FROM run")
    assert status == "failed" and error.startswith(f"rank 1 (pid {other}) died")


def test_num_processes_must_match_the_launcher(cli):
    from grpo_lab.config import RunConfig
    from grpo_lab.errors import ConfigError
    from grpo_lab.runner import check_processes

    config = RunConfig(model_name="tiny-arith")
    check_processes(config, 1)
    assert config.num_processes == 1
    with pytest.raises(ConfigError, match="--num_processes 2 needs that many processes"):
        check_processes(RunConfig(model_name="tiny-arith", num_processes=2), 1)
    with pytest.raises(ConfigError, match="it started 3"):
        check_processes(RunConfig(model_name="tiny-arith", num_processes=2), 3)
