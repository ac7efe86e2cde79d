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
    assert status == "finished" and new_wandb_dir == wandb_dir  # the same row, the same WandB run
    assert len(list((isolated / "wandb").glob(f"offline-run-*-{run_id}"))) == 2  # both stretches, one WandB ID
    assert [s for (s,) in rows(db, "SELECT step FROM step ORDER BY step")] == list(range(1, STEPS + 1))
    assert json.loads(summary)["steps"] == STEPS
    assert {st for (st,) in rows(db, "SELECT DISTINCT stage FROM result")} == {"before", "after"}
    ((note,),) = rows(db, "SELECT text FROM note WHERE run_id = ?", run_id)
    assert note.startswith("resumed from checkpoint-") and note.endswith("finished: ok")
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
