"""Checkpoints and `grpo-lab resume`: a run stopped after a checkpoint continues in the same row and WandB run,
its curve without duplicates or gaps, to the model an uninterrupted run of the same seed reaches."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import sql_rows as rows
from safetensors.torch import load_file
from wandb_log import history

QUICK = ["--model_name", "tiny-arith", "--n_samples", "32", "--batch_size", "16", "--num_generations", "4",
         "--learning_rate", "5e-4", "--eval_samples", "20", "--eval_suite", "none", "--threads", "1"]  # fmt: skip
STEPS = 12


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def test_checkpoints_are_kept_every_n_steps_newest_k(cli, isolated):
    proc = cli("run", *QUICK, "--wandb", "disabled", "--max_steps", "5", "--save_steps", "2", "--save_total_limit",
               "2", "--hypothesis", "checkpoints", "--output_dir", "out")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # every 2 steps and at the last one (transformers saves the end too); checkpoint-2 was dropped
    assert sorted(p.name for p in (isolated / "out").glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-5"]
    kept = isolated / "out" / "checkpoint-4"
    for name in ("model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"):
        assert (kept / name).exists(), name


@pytest.mark.slow
def test_an_interrupted_run_resumes_to_the_uninterrupted_model(cli, isolated):
    common = [*QUICK, "--max_steps", str(STEPS), "--save_steps", "2"]
    # the reference: the same run, never stopped
    ref = cli("run", *common, "--wandb", "disabled", "--hypothesis", "reference", "--output_dir", "ref",
              "--db", "ref.db")  # fmt: skip
    assert ref.returncode == 0, ref.stderr

    cmd = [sys.executable, "-m", "grpo_lab", "run", *common, "--wandb", "offline", "--hypothesis", "stopped",
           "--output_dir", "out"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"})  # fmt: skip
    deadline = time.time() + 180
    while not (isolated / "out" / "checkpoint-2" / "trainer_state.json").exists():
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() is not None else ""
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    db = isolated / "grpo_lab.db"
    ((run_id, status, wandb_dir),) = rows(db, "SELECT id, status, wandb_dir FROM run")
    assert status == "interrupted"
    stopped_at = max(s for (s,) in rows(db, "SELECT step FROM step"))
    assert 2 <= stopped_at < STEPS

    resumed = cli("resume", run_id[:5], env={"WANDB_MODE": "offline", "WANDB_SILENT": "true"})
    assert resumed.returncode == 0, resumed.stderr
    assert f"run {run_id} finished" in resumed.stdout
    ((status, new_wandb_dir, summary),) = rows(db, "SELECT status, wandb_dir, summary FROM run")
    folders = sorted((isolated / "wandb").glob(f"offline-run-*-{run_id}"))  # both stretches, one WandB ID
    assert status == "finished" and new_wandb_dir.splitlines() == [str(f.absolute()) for f in folders]
    assert new_wandb_dir.splitlines()[0] == wandb_dir and len(folders) == 2
    # one step axis: WandB's step is the training step in both stretches, and every step is in one of them
    first, second = ([r["_step"] for r in history(f)] for f in folders)
    assert first == list(range(1, len(first) + 1)) and second == list(range(second[0], STEPS + 1))
    assert 2 <= second[0] <= min(stopped_at, len(first)) + 1  # continued where the checkpoint left off
    assert f"wandb sync --id {run_id} {folders[0].absolute()} {folders[1].absolute()}" in resumed.stdout
    assert [s for (s,) in rows(db, "SELECT step FROM step ORDER BY step")] == list(range(1, STEPS + 1))
    assert json.loads(summary)["steps"] == STEPS
    assert {st for (st,) in rows(db, "SELECT DISTINCT stage FROM result")} == {"before", "after"}
    ((note,),) = rows(db, "SELECT text FROM note WHERE run_id = ?", run_id)
    assert note.startswith(f"resumed from checkpoint-{second[0] - 1} (step {second[0] - 1})")
    assert note.endswith("finished: ok") and "missing" not in note
    # the curve and the model are those of the run that was never stopped
    ref_db = isolated / "ref.db"
    curve = lambda d: [json.loads(m)["loss"] for (m,) in rows(d, "SELECT metrics FROM step ORDER BY step")]  # noqa: E731
    assert curve(db) == pytest.approx(curve(ref_db), abs=1e-5)
    a, b = weights(isolated / "out"), weights(isolated / "ref")
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a), max((a[k] - b[k]).abs().max().item() for k in a)


def test_resume_refuses_what_it_cannot_continue(cli, isolated, recorded_store):
    db, finished = recorded_store
    proc = cli("resume", finished, "--db", str(db))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert f"run {finished} is finished; only interrupted, crashed, failed runs can be resumed" in proc.stderr

    from grpo_lab.store.db import Run, Store, iso, now

    Store(f"sqlite:///{isolated / 'grpo_lab.db'}").create_run(
        Run(
            id="nockpt01",
            exp_name="x",
            status="interrupted",
            started_at=iso(now()),
            host="h",
            model_name="m",
            output_dir=str(isolated / "gone"),
        )  # fmt: skip
    )
    proc = cli("resume", "nockpt01")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "run nockpt01 has no checkpoint" in proc.stderr and "--save_steps" in proc.stderr


def _start(args: list[str], cwd, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "grpo_lab", *args], cwd=cwd, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})  # fmt: skip


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 300) -> None:
    """kill -9 the command and every process it started, as soon as ``ready()`` holds."""
    deadline = time.time() + timeout
    while not ready():
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline, "the moment to kill never came"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _steps(db) -> list[int]:
    try:
        return [s for (s,) in rows(db, "SELECT step FROM step ORDER BY step")]
    except Exception:  # the store is not there yet
        return []


KILLS = {
    # right after a checkpoint is whole: its steps must already be in the store (they are written before it)
    "after-checkpoint": lambda out, db: (out / "checkpoint-2" / "trainer_state.json").exists(),
    # between two checkpoints: steps past the last checkpoint are in the store and get recomputed
    "between-checkpoints": lambda out, db: 5 in _steps(db),
    # as soon as the first step is recorded, before any checkpoint: nothing to resume from
    "before-any-checkpoint": lambda out, db: 1 in _steps(db),
}


@pytest.mark.slow
@pytest.mark.parametrize("moment", list(KILLS))
def test_a_run_killed_at_any_moment_resumes_with_every_step_once(isolated, moment):
    """kill -9 (the run and everything it started) at a moment of the run; resume; every step is recorded
    exactly once and the note says what was recomputed. Before any checkpoint there is nothing to resume from:
    a one-line refusal, and the store is left as it was."""
    out, db = isolated / "out", isolated / "grpo_lab.db"
    steps = 8
    args = ["run", *QUICK, "--max_steps", str(steps), "--save_steps", "2", "--wandb", "disabled",
            "--hypothesis", "killed", "--output_dir", str(out)]  # fmt: skip
    _kill_when(_start(args, isolated), lambda: KILLS[moment](out, db))
    resumed = subprocess.run([sys.executable, "-m", "grpo_lab", "resume", rows(db, "SELECT id FROM run")[0][0]],
                             capture_output=True, text=True, cwd=isolated, timeout=300)  # fmt: skip
    if moment == "before-any-checkpoint" and not list(out.glob("checkpoint-*/trainer_state.json")):
        assert resumed.returncode == 2 and "has no checkpoint" in resumed.stderr, resumed.stderr
        return
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert _steps(db) == list(range(1, steps + 1))
    ((status, notes),) = rows(db, "SELECT status, (SELECT group_concat(text) FROM note) FROM run")
    assert status == "finished" and notes.startswith("resumed from checkpoint-") and "missing" not in notes


@pytest.mark.slow
def test_two_processes_killed_right_after_a_checkpoint_resume_with_every_step_once(isolated):
    """kill -9 of the launcher (its whole process group) takes both ranks with it (they run in sessions of their
    own, out of reach of the group's signals): none trains on as an orphan, the resume continues, and the
    temporary folder the killed command left is removed by the next one."""
    from test_distributed import started_by, wait_gone

    out, db, tmp = isolated / "out", isolated / "grpo_lab.db", isolated / "tmp"
    tmp.mkdir()
    steps = 8
    args = ["run", *QUICK, "--max_steps", str(steps), "--save_steps", "2", "--wandb", "disabled", "--num_processes",
            "2", "--hypothesis", "killed", "--output_dir", str(out)]  # fmt: skip
    launcher = _start(args, isolated, TMPDIR=str(tmp))
    ranks = []

    def after_checkpoint() -> bool:
        ranks[:] = ranks or started_by(launcher.pid)
        return (out / "checkpoint-4" / "trainer_state.json").exists()

    _kill_when(launcher, after_checkpoint)
    assert len(ranks) == 2 and wait_gone(ranks) == []  # no process outlives its launcher
    assert [p.name.startswith(f"grpo-lab-{launcher.pid}-") for p in tmp.iterdir()] == [True]  # left by kill -9
    resumed = subprocess.run([sys.executable, "-m", "grpo_lab", "resume", rows(db, "SELECT id FROM run")[0][0]],
                             capture_output=True, text=True, cwd=isolated, timeout=300,
                             env={**os.environ, "TMPDIR": str(tmp)})  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert _steps(db) == list(range(1, steps + 1))
    assert list(tmp.iterdir()) == []  # the dead command's folder swept, the resume's own removed
    ((note,),) = rows(db, "SELECT text FROM note")
    assert note.startswith("resumed from checkpoint-4") and note.endswith("finished: ok")


def test_a_resume_continues_from_the_newest_checkpoint_whose_steps_are_all_recorded():
    from grpo_lab.runner import choose_checkpoint, recorded_through, resume_note

    found = [(6, "c6"), (4, "c4"), (2, "c2")]
    assert recorded_through([1, 2, 3, 5, 6]) == 3 and recorded_through([]) == 0
    assert choose_checkpoint(found, [1, 2, 3, 4, 5, 6, 7]) == (6, "c6")
    assert choose_checkpoint(found, [1, 2, 3, 5, 6]) == (2, "c2")  # a hole at 4: not past it
    assert choose_checkpoint(found, [1]) == (2, "c2")  # none covered: the oldest, and the note says so
    assert resume_note("out/checkpoint-2", 2, [1], "finished", None) == (
        "resumed from checkpoint-2 (step 2); step 2 lost before it, missing; finished: ok")  # fmt: skip
    note = resume_note("out/checkpoint-4", 4, [1, 2, 3, 4, 5, 6, 7], "finished", None)
    assert note == "resumed from checkpoint-4 (step 4); steps 5-7, recorded before the stop, recomputed; finished: ok"
