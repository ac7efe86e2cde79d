"""`grpo-lab rerun ID`: a recorded run again from its record, as a new run linked to it, with a metric-by-metric
reproduction report; a dirty tree's diff recorded with the run, shown, printed and marked in every view."""

import json
import shlex
import shutil
import sqlite3
import subprocess
import sys

import pytest
from conftest import sql_rows as rows
from test_provenance import git_repo

QUICK = ["--model_name", "tiny-arith", "--n_samples", "32", "--batch_size", "16", "--num_generations", "4",
         "--learning_rate", "5e-4", "--eval_samples", "20", "--eval_suite", "none", "--wandb", "disabled",
         "--max_steps", "2", "--threads", "1"]  # fmt: skip


def grpo_lab(*args, cwd):
    return subprocess.run([sys.executable, "-m", "grpo_lab", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)  # fmt: skip


@pytest.mark.slow
def test_a_dirty_tree_run_keeps_its_diff_and_its_rerun_reproduces_it(isolated):
    git = git_repo(isolated)
    (isolated / "train.py").write_text("lr = 5e-4  # the change that ran\n")  # uncommitted
    proc = grpo_lab("run", *QUICK, "--hypothesis", "a dirty run", "--criteria", "steps = 2", cwd=isolated)
    assert proc.returncode == 0, proc.stderr
    db = isolated / "grpo_lab.db"
    ((run_id, dirty, diff, size, resolved),) = rows(
        db, "SELECT id, git_dirty, code_diff, code_diff_bytes, resolved_command FROM run"
    )
    assert dirty == 1 and "+lr = 5e-4  # the change that ran" in diff and size == len(diff.encode())

    # every view marks it; show says where its diff is, and --diff prints it as git apply takes it
    show = grpo_lab("show", run_id, cwd=isolated)
    assert "and uncommitted changes (their diff kept" in show.stdout and f"grpo-lab show {run_id} --diff" in show.stdout
    printed = grpo_lab("show", run_id[:5], "--diff", cwd=isolated)
    assert printed.returncode == 0 and printed.stdout == diff
    runs = grpo_lab("runs", cwd=isolated)
    assert f"{run_id}*" in runs.stdout and "* ran with uncommitted changes" in runs.stdout
    compare = grpo_lab("compare", "--format", "json", cwd=isolated)
    assert json.loads(compare.stdout)[0]["git_dirty"] is True

    # the resolved command runs as written (it carries the hypothesis and criteria)
    assert "--hypothesis 'a dirty run' --criteria 'steps = 2'" in resolved
    again = grpo_lab(*shlex.split(resolved)[1:], cwd=isolated)
    assert again.returncode == 0, again.stderr

    # rerun: a new run linked to the first, the same code (the same diff), every metric identical
    rerun = grpo_lab("rerun", run_id[:5], cwd=isolated)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    new_id = rows(db, "SELECT id FROM run WHERE rerun_of = ?", run_id)[0][0]
    assert f"run {new_id} against run {run_id}: reproduced exactly:" in rerun.stdout
    assert "code: the same: commit" in rerun.stdout and "model: tiny-arith: the same weights" in rerun.stdout
    ((hypothesis, criteria, new_diff, command, verdict),) = rows(
        db, "SELECT hypothesis, criteria, code_diff, command, verdict FROM run WHERE id = ?", new_id
    )
    assert (hypothesis, criteria, new_diff, verdict) == ("a dirty run", "steps = 2", diff, "confirmed")
    assert command == f"grpo-lab rerun {run_id[:5]}"
    metrics = {r: dict(rows(db, "SELECT name, value FROM metric WHERE run_id = ?", r)) for r in (run_id, new_id)}
    assert metrics[run_id] == metrics[new_id] and "train_acc" in metrics[run_id]
    (note,) = [t for (t,) in rows(db, "SELECT text FROM note WHERE run_id = ?", run_id)]
    assert note.startswith(f"rerun as {new_id}: reproduced exactly")
    journal = grpo_lab("journal", "render", run_id, new_id, "--stdout", cwd=isolated).stdout
    assert journal.count("- Code: commit ") == 2 and f"(`grpo-lab show {run_id} --diff`)" in journal
    assert f"- Rerun of run {run_id} (`grpo-lab rerun`)" in journal

    # committed, the tree is clean: the code is not the same any more, and the report says so
    git("commit", "-qam", "the change")
    later = grpo_lab("rerun", run_id, cwd=isolated)
    assert later.returncode == 0 and "code: differs: commit" in later.stdout


def test_rerun_refuses_what_it_cannot_run_again_and_writes_nothing(isolated, recorded_store):
    recorded, run_id = recorded_store
    db = isolated / "copy.db"
    shutil.copy(recorded, db)

    def refused(*args, message):
        before = db.read_bytes()
        proc = grpo_lab("rerun", *args, "--db", str(db), cwd=isolated)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr
        assert db.read_bytes() == before
        return proc

    refused("nosuchrun", message="no run with ID 'nosuchrun'")
    refused(run_id, "--wandb", "sometimes", message="--wandb 'sometimes' is not one of")
    (isolated / "full").mkdir()
    (isolated / "full" / "x").write_text("x")
    refused(run_id, "--output_dir", str(isolated / "full"), message="already holds files")
    conn = sqlite3.connect(db)
    conn.execute("UPDATE run SET model_checksum = ?", ("deadbeef" * 8,))
    conn.commit()
    conn.close()
    refused(run_id, message="the model tiny-arith is not the one run")
    conn = sqlite3.connect(db)
    conn.execute("UPDATE run SET status = 'queued'")
    conn.commit()
    conn.close()
    refused(run_id, message=f"run {run_id} is queued; rerun a run that ended")


@pytest.mark.slow
def test_an_evaluation_reruns_too(isolated):
    proc = grpo_lab("eval", "--model_name", "tiny-arith", "--suite", "arith-v1", "--threads", "1", cwd=isolated)
    assert proc.returncode == 0, proc.stderr
    db = isolated / "grpo_lab.db"
    ((run_id,),) = rows(db, "SELECT id FROM run")
    refused = grpo_lab("rerun", run_id, "--output_dir", "x", cwd=isolated)
    assert refused.returncode == 2 and "it saves no model" in refused.stderr
    rerun = grpo_lab("rerun", run_id, cwd=isolated)
    assert rerun.returncode == 0, rerun.stderr
    assert "reproduced exactly: 5 of 5 metrics identical" in rerun.stdout, rerun.stdout
    assert rows(db, "SELECT kind, rerun_of FROM run WHERE rerun_of IS NOT NULL") == [("eval", run_id)]
