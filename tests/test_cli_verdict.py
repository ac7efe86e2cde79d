"""Verdicts computed from criteria written before the run, through the real command."""

import json
import sqlite3

import pytest
from conftest import QUICK_RUN

from grpo_lab import tasks


def row(db, run_id=None):
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    query = "SELECT * FROM run" + (" WHERE id = ?" if run_id else " ORDER BY started_at DESC LIMIT 1")
    out = dict(conn.execute(query, (run_id,) if run_id else ()).fetchone())
    out["metrics"] = dict(conn.execute("SELECT name, value FROM metric WHERE run_id = ?", (out["id"],)).fetchall())
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    ("criteria", "verdict", "printed"),
    [
        ("held_out >= 0 and steps = 2", "confirmed", "verdict: held_out >= 0% and steps = 2: confirmed (held_out"),
        ("arith-v1_gain > 0.99", "rejected", "verdict: arith-v1 rises by > 99 pt: rejected (arith-v1_gain"),
        ("the model gets better", "unchecked", "verdict: unchecked (the criteria are free text"),
    ],
)
def test_a_run_prints_and_stores_its_verdict(cli, isolated, criteria, verdict, printed):
    proc = cli("run", *QUICK_RUN, "--hypothesis", "h", "--criteria", criteria, env={"COLUMNS": "250"})
    assert proc.returncode == 0, proc.stderr
    assert printed in proc.stdout
    r = row(isolated / "grpo_lab.db")
    assert r["verdict"] == verdict and r["criteria"] == criteria and r["suites_disjoint"] == 1
    if verdict == "rejected":
        gain = r["metrics"]["arith-v1_gain"]
        assert r["verdict_detail"] == f"arith-v1_gain {gain:.4g} <= 0.99"
    rows = json.loads(cli("compare", "--where", f"verdict={verdict}", "--format", "json").stdout)
    assert [x["id"] for x in rows] == [r["id"]] and rows[0]["verdict"] == verdict
    assert r["metrics"]["arith-v1_overlap"] == 0  # built-in suites are held out by construction


@pytest.mark.parametrize(
    ("criteria", "message"),
    [
        ("arith-v1 >= 0.42 or kl_last < 1", "--criteria: expected 'and' between conditions, got 'or'"),
        ("accuracy > 0.5", "--criteria: unknown field 'accuracy'"),
        ("mixed-v1 > 0.5", "--criteria: unknown field 'mixed-v1'"),
        ("arith-v1 > high", "criteria compare numbers"),
    ],
)
def test_a_malformed_criterion_is_one_line_and_writes_nothing(cli, isolated, criteria, message):
    proc = cli("run", *QUICK_RUN, "--hypothesis", "h", "--criteria", criteria)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr
    assert not (isolated / "grpo_lab.db").exists() and not (isolated / "wandb").exists()


@pytest.mark.slow
def test_a_user_suite_that_overlaps_training_is_counted_and_flagged(cli, isolated):
    train = tasks.generate_problems("arithmetic", 32, seed=42)  # QUICK_RUN's training set (seed 42, 32 problems)
    mine = train[:5] + [tasks.arithmetic_problem(40, "+", 41), tasks.arithmetic_problem(33, "-", 30)]
    (isolated / "mine.jsonl").write_text("".join(json.dumps(p.row()) + "\n" for p in mine))
    proc = cli("run", *QUICK_RUN, "--hypothesis", "h", "--eval_suite", "mine.jsonl", "--criteria", "mine >= 0")
    assert proc.returncode == 0, proc.stderr
    r = row(isolated / "grpo_lab.db")
    assert r["metrics"]["mine_overlap"] == 5 and "mine" in r["metrics"] and r["verdict"] == "confirmed"
    assert json.loads(r["config"])["eval_suite"] == str(isolated / "mine.jsonl")  # reruns from anywhere
    show = cli("show", r["id"], env={"COLUMNS": "250"}).stdout
    assert "contaminated" in show and "5 in mine" in show
