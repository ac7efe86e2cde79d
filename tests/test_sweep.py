"""Sweeps: the spec (pure), and real sweeps of tiny runs through the local and submitit executors."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import sql_rows as rows

from grpo_lab import sweep as sw
from grpo_lab.errors import GrpoLabError

TINY = {"model_name": "tiny-arith", "n_samples": 32, "batch_size": 16, "num_generations": 4, "learning_rate": 5e-5,
        "eval_samples": 20, "max_steps": 2}  # fmt: skip


def spec(**over):
    data = {"name": "t", "hypothesis": "h", "seeds": "1-2", "base": dict(TINY), "grid": {"beta": [0, 0.1]},
            "baseline": "beta=0.1"}  # fmt: skip
    data.update(over)
    return sw.build(data)


@pytest.mark.parametrize(
    ("value", "seeds"), [("1-3", [1, 2, 3]), ("1,3,5", [1, 3, 5]), ("1-2,7", [1, 2, 7]), ([4, 2], [4, 2]), (5, [5])]
)
def test_seeds(value, seeds):
    assert sw.parse_seeds(value) == seeds


@pytest.mark.parametrize("value", ["3-1", "a", "1,1", [1.5], "", True])
def test_bad_seeds(value):
    with pytest.raises(GrpoLabError):
        sw.parse_seeds(value)


def test_a_grid_expands_seed_major_with_arm_names_from_the_flags():
    s = spec(grid={"beta": [0, 0.1], "n_samples": [32, 64]}, baseline="beta=0.1,n_samples=64")
    assert [a.name for a in s.arms] == ["beta=0,n_samples=32", "beta=0,n_samples=64", "beta=0.1,n_samples=32",
                                        "beta=0.1,n_samples=64"]  # fmt: skip
    planned = s.plan()
    assert len(planned) == 8 and [p.seed for p in planned[:4]] == [1, 1, 1, 1]
    p = planned[5]
    assert (p.arm, p.seed, p.config.beta, p.config.n_samples) == ("beta=0,n_samples=64", 2, 0, 64)
    assert p.config.exp_name == "t_beta=0,n_samples=64" and p.config.max_steps == 2
    assert s.metric == "arith-v1"  # the first suite the runs are evaluated on


def test_the_same_spec_has_the_same_digest_and_round_trips_through_the_store():
    a, b = spec(), spec()
    assert a.digest() == b.digest() != spec(seeds="1-3").digest()
    assert sw.from_record(json.dumps(a.to_dict())).digest() == a.digest()


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"name": "bad name!"}, "give the sweep a name"),
        ({"hypothesis": ""}, "needs a hypothesis"),
        ({"base": {**TINY, "colour": 1}}, "unknown flags colour"),
        ({"base": {**TINY, "seed": 1}}, "set by the sweep"),
        ({"grid": {"beta": []}}, "give a list of values"),
        ({"baseline": "beta=0.5"}, "baseline 'beta=0.5' is not an arm"),
        ({"criteria": "arith-v1 >> 1"}, "--criteria"),
        ({"criteria": "mixed-v1 > 0"}, "unknown field 'mixed-v1'"),
        ({"compare": "diff < 0 or p < 1"}, "expected 'and'"),
        ({"compare": "gain < 0"}, "unknown field 'gain'"),
        ({"base": {**TINY, "batch_size": 15}}, "arm beta=0, seed 1: --batch_size 15 is not divisible"),
        ({"colour": 1}, "unknown keys colour"),
        ({"metric": "accuracy"}, "metric 'accuracy' is not one of"),
        ({"arms": {"beta=0": {"flags": {"beta": 1}}}}, "a grid arm's flags come from the grid"),
        ({"arms": {"x": {}}}, "is not one of the grid's arms"),
    ],
)
def test_a_bad_sweep_is_refused_before_anything_is_written(over, message):
    with pytest.raises(GrpoLabError, match=message.replace("(", r"\(")):
        spec(**over)


def test_arm_verdict_from_the_paired_row():
    arm = sw.Arm("x", {}, "h", compare="diff < 0 and p_holm < 0.05")
    assert sw.arm_verdict(arm, {"diff": -0.02, "p_holm": 0.01}).status == "confirmed"
    rejected = sw.arm_verdict(arm, {"diff": -0.02, "p_holm": 0.2})
    assert rejected.status == "rejected" and rejected.detail == "p_holm 0.2 >= 0.05"
    assert sw.arm_verdict(sw.Arm("b", {}, "h"), None).status == "unchecked"


SWEEP = """
name = "{name}"
hypothesis = "beta matters"
seeds = "1-2"
baseline = "beta=0.1,n_samples=48"
metric = "held_out"
criteria = "steps = 2"
compare = "diff > -1"

[base]
model_name = "tiny-arith"
n_samples = 32
batch_size = 16
num_generations = 4
eval_samples = 20
max_steps = 2

[grid]
beta = [0, 0.1]
n_samples = [32, 48]
"""


def sweep_cmd(*args):
    return [sys.executable, "-c", "from grpo_lab.cli import main; main()", "sweep", *args]


def assert_every_slot_finished_once(db, name):
    (sweep_id,) = rows(db, "SELECT id FROM sweep WHERE name = ?", name)[0]
    current = rows(db, "SELECT arm, json_extract(config, '$.seed'), status, verdict FROM run "
                       "WHERE sweep_id = ? AND NOT superseded", sweep_id)  # fmt: skip
    slots = sorted((arm, seed) for arm, seed, _, _ in current)
    assert len(slots) == len(set(slots)) == 8
    assert {(status, verdict) for _, _, status, verdict in current} == {("finished", "confirmed")}
    finished = rows(db, "SELECT count(*) FROM run WHERE sweep_id = ? AND status = 'finished'", sweep_id)[0][0]
    assert finished == 8  # finished exactly once each: nothing ran twice
    return sweep_id


@pytest.mark.slow
def test_a_sweep_killed_half_way_resumes_and_finishes_every_run_exactly_once(isolated):
    (isolated / "s.toml").write_text(SWEEP.format(name="kill"))
    db = isolated / "grpo_lab.db"
    proc = subprocess.Popen(sweep_cmd("s.toml", "--parallel", "2", "--wandb", "disabled"), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.time() + 300
    while time.time() < deadline:  # half-way: a run finished, another one training
        time.sleep(0.2)
        try:
            counts = dict(rows(db, "SELECT status, count(*) FROM run GROUP BY status"))
        except sqlite3.OperationalError:  # not created yet
            continue
        if counts.get("finished", 0) >= 1 and counts.get("running", 0) >= 1:
            break
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its workers, as a crash would
    proc.wait()
    statuses = [s for (s,) in rows(db, "SELECT status FROM run")]
    assert 1 <= statuses.count("finished") < 8 and "queued" in statuses and "running" in statuses
    status = subprocess.run(sweep_cmd("status", "kill"), capture_output=True, text=True, env={**os.environ,
                            "COLUMNS": "200"})  # fmt: skip
    assert status.returncode == 0
    assert "crashed" in [s for (s,) in rows(db, "SELECT status FROM run")]  # marked by the status command
    resumed = subprocess.run(sweep_cmd("resume", "kill", "--parallel", "2"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resumed" in resumed.stdout
    sweep_id = assert_every_slot_finished_once(db, "kill")
    superseded = rows(db, "SELECT status FROM run WHERE sweep_id = ? AND superseded", sweep_id)
    assert superseded and {s for (s,) in superseded} <= {"crashed"}  # kept, never deleted
    again = subprocess.run(sweep_cmd("s.toml"), capture_output=True, text=True)  # the same file: nothing to do
    assert again.returncode == 0 and "0 runs to start, 8 finished" in again.stdout
    out = subprocess.run([sys.executable, "-c", "from grpo_lab.cli import main; main()", "compare", "--sweep", "kill",
                          "--format", "json"], capture_output=True, text=True)  # fmt: skip
    paired = json.loads(out.stdout)
    assert len(paired) == 3 and {r["verdict"] for r in paired} == {"confirmed"} and {r["n"] for r in paired} == {2}


@pytest.mark.slow
def test_the_same_sweep_through_submitits_local_executor(isolated):
    pytest.importorskip("submitit", reason="submitit is the slurm extra; pip install 'grpo-lab[slurm]'")
    (isolated / "s.toml").write_text(SWEEP.format(name="slurmish"))
    proc = subprocess.run(sweep_cmd("s.toml", "--executor", "submitit-local", "--parallel", "2"),
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_every_slot_finished_once(isolated / "grpo_lab.db", "slurmish")
    assert list((isolated / "runs").glob("sweep-*/submitit/*_result.pkl"))  # submitit really ran the jobs


@pytest.mark.slow
def test_ctrl_c_under_submitit_local_records_interrupted_runs_without_a_traceback(isolated):
    """A terminal's Ctrl-C reaches the whole process group: the sweep, submitit's job watchers and the jobs. The
    jobs record their runs as interrupted; nothing prints a KeyboardInterrupt traceback; nothing is left behind."""
    pytest.importorskip("submitit", reason="submitit is the slurm extra; pip install 'grpo-lab[slurm]'")
    (isolated / "s.toml").write_text(SWEEP.format(name="ctrlc").replace("max_steps = 2", "max_steps = 2000"))
    tmp = isolated / "tmp"
    tmp.mkdir()
    db = isolated / "grpo_lab.db"
    proc = subprocess.Popen(sweep_cmd("s.toml", "--executor", "submitit-local", "--parallel", "2"),
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "TMPDIR": str(tmp)})  # fmt: skip
    deadline = time.time() + 300
    while time.time() < deadline:  # both jobs training
        time.sleep(0.5)
        try:
            if rows(db, "SELECT count(*) FROM step")[0][0] and len(rows(db, "SELECT DISTINCT run_id FROM step")) == 2:
                break
        except sqlite3.OperationalError:
            continue
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    assert out.splitlines()[-1] == "grpo-lab: error: interrupted", out
    statuses = sorted(s for (s,) in rows(db, "SELECT status FROM run"))
    assert statuses.count("interrupted") == 2 and set(statuses) == {"interrupted", "queued"}, statuses
    time.sleep(2)  # the job watchers end after their jobs
    assert list(tmp.iterdir()) == []


def test_dry_run_prints_every_command_and_writes_nothing(cli, isolated):
    (isolated / "s.toml").write_text(SWEEP.format(name="dry"))
    proc = cli("sweep", "s.toml", "--dry_run")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert sum(line.startswith("grpo-lab run ") for line in lines) == 8
    assert "8 runs (4 arms x 2 seeds)" in lines[-1] and not (isolated / "grpo_lab.db").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope.toml"], "no sweep file nope.toml"),
        (["a.txt"], "give one sweep file (.toml)"),
        (["status"], "usage: grpo-lab sweep status ID"),
        (["--grid", "beta"], "--grid 'beta': write FLAG=V1,V2"),
        (["--grid", "beta=0,0.1"], "a sweep needs a hypothesis"),
        (["--grid", "beta=0,0.1", "--hypothesis", "h", "--parallel", "0"], "--parallel must be at least 1"),
        (["--grid", "beta=0,0.1", "--hypothesis", "h", "--executor", "k8s"], "--executor 'k8s' is not one of"),
    ],
)
def test_bad_sweep_commands_are_one_line(cli, isolated, args, message):
    proc = cli("sweep", *args)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_changing_a_started_sweep_is_refused(cli, isolated):
    from grpo_lab.store.db import Store

    store = Store(f"sqlite:///{isolated / 'grpo_lab.db'}")
    sw.queue(store, spec(name="same"), "inline", ["grpo-lab", "sweep"])
    with pytest.raises(GrpoLabError, match="a sweep named 'same' with other settings"):
        sw.queue(store, spec(name="same", seeds="1-3"), "inline", ["grpo-lab", "sweep"])
    again = sw.queue(store, spec(name="same"), "inline", ["grpo-lab", "sweep"])
    assert not again.new and len(again.to_run) == 4  # still queued: picked up, not duplicated
    assert len(store.sweep_runs(again.sweep.id)) == 4


def test_arm_verdicts_only_on_the_metric_their_criteria_were_written_for():
    """compare --sweep --metric zero_std pairs the arms on zero_std; the arms' criteria were written for the
    sweep's metric, so no verdict is computed from another one (it would read as a verdict)."""
    s = spec(metric="arith-v1", compare="diff < 0")
    record = {"spec": json.dumps(s.to_dict())}
    rows = []
    for arm in s.arms:
        for seed in s.seeds:
            lower = arm.name != s.baseline
            rows.append({"id": f"{arm.name}{seed}", "kind": "train", "exp_name": s.exp_name(arm.name),
                         "status": "finished", "config": {"seed": seed, **arm.flags}, "sweep_id": "sw",
                         "arm": arm.name, "verdict": None, "suites_disjoint": True, "started_at": "2026",
                         "metrics": {"arith-v1": 0.2 - lower * seed / 100, "zero_std": 0.1 + lower / 10}})  # fmt: skip
    (on_metric,) = sw.paired_with_verdicts(rows, record).rows
    assert on_metric["verdict"] == "confirmed" and on_metric["criterion"] == "diff < 0"
    other = sw.paired_with_verdicts(rows, record, "zero_std")
    assert "verdict" not in other.columns and "verdict" not in other.rows[0]
    assert (
        other.notes[-1] == "arm verdicts are checked on arith-v1, the sweep's metric; without --metric they are shown"
    )


def test_a_sweep_whose_seeds_cannot_reach_its_significance_is_refused_unless_underpowered(cli, isolated):
    """5 seeds, 6 arms compared with the baseline at p_holm < 0.05: 6 x 2/2^5 = 0.375 > 0.05, so no outcome can
    confirm any arm: refused before anything is written; --underpowered plans it; 9 seeds can."""
    grid = ["--grid", "beta=0,0.02,0.05,0.1,0.2,0.3,0.4", "--baseline", "beta=0.1", "--compare",
            "diff > 0 and p_holm < 0.05", "--seeds", "1-5", "--hypothesis", "h", "--name", "weak"]  # fmt: skip
    tiny = [a for k, v in {**TINY, "max_steps": 1, "eval_samples": 4}.items() for a in ("--set", f"{k}={v}")]
    tiny += ["--set", "eval_suite=none"]
    refused = cli("sweep", *grid, *tiny, "--dry_run")
    assert refused.returncode == 2 and "cannot reach their criteria's significance with 5 seeds" in refused.stderr
    assert "the smallest p_holm they give is 0.375" in refused.stdout
    assert not (isolated / "grpo_lab.db").exists()
    planned = cli("sweep", *grid, *tiny, "--dry_run", "--underpowered")
    assert planned.returncode == 0 and "35 runs (7 arms x 5 seeds)" in planned.stdout
    enough = cli("sweep", *grid[:-5], "1-9", *grid[-4:], *tiny, "--dry_run", "--pilot-sd", "0.01")
    assert enough.returncode == 0, enough.stderr
    assert "9 seeds, p_holm < 0.05: detects >= " in enough.stdout and "pt (" in enough.stdout


def test_compare_sweep_of_the_replication_begins_with_its_answer_and_says_what_it_could_detect(tmp_path):
    """replication-v2's store (copied: the shipped one is never written): a forest plot before the tables, every
    arm's verdict in words, and an mde column; the README quotes the MDE from here."""
    import shutil

    from conftest import call

    db = tmp_path / "r2.db"
    shutil.copy(sw.Path(__file__).parents[1] / "research" / "replication-v2" / "research.db", db)
    out = call("compare", "--sweep", "replication-v2", "--db", str(db), "--format", "plain").stdout
    lines = out.splitlines()
    assert lines[0] == "Answer (arith-v1, arm minus baseline, points, 95% interval, paired by seed):"
    assert all(len(line) <= 80 for line in lines[: lines.index("")])  # the forest plot fits 80 columns
    assert any(line.startswith("partial ") and "[+0.5, +2.3]" in line and "o" in line for line in lines)
    assert "better than baseline: not shown, p_holm 0.19; detectable >= 2.1 pt" in out
    assert "no worse than baseline by 2 pt: confirmed" in out
    rows = json.loads(call("compare", "--sweep", "replication-v2", "--db", str(db), "--format", "json").stdout)
    by_arm = {r["arm"]: r for r in rows}
    assert set(by_arm) == {"beta0", "gen4", "temp1", "n100", "mixed", "partial"}
    assert 0.015 < by_arm["partial"]["mde"] < 0.025 and by_arm["partial"]["claim"] == "better than baseline"
    assert by_arm["temp1"]["verdict_words"] == "no worse than baseline by 2 pt: confirmed"


def test_compare_sweep_md_of_a_sweep_whose_arms_share_their_seeds_keeps_every_number(tmp_path):
    """replication-v3's store (copied), where every arm has the same 12 seeds: n and seeds are said once above the
    paired table, which still shows each difference in points with its interval (it once fell back to the run
    table's cells: "-0.8%" and no interval), and every verdict in words is wrapped whole within 80 columns."""
    import shutil

    from conftest import call

    db = tmp_path / "r3.db"
    shutil.copy(sw.Path(__file__).parents[1] / "research" / "replication-v3" / "study.db", db)
    out = call("compare", "--sweep", "replication-v3", "--db", str(db), "--format", "md").stdout
    forest = out[out.index("```text") : out.index("```", out.index("```text") + 1)].splitlines()[1:]
    assert all(len(line) <= 80 for line in forest)
    words = " ".join(line.strip() for line in forest)
    assert "no worse than baseline by 2 pt: not shown, ci_low -8.53 pt; detectable >= 3 pt" in words
    paired = out[out.index("**Paired by seed") :]
    assert "every row: n 12; seeds 1,2,3,4,5,6,7,8,9,10,11,12" in paired.splitlines()[0]
    mixed = next(line for line in paired.splitlines() if line.startswith("| replication-v3_mixed |"))
    assert "| -7.0 pt ± 2.3 | [-8.5, -5.6] |" in mixed and "| chl1qxto +11 |" in mixed


@pytest.mark.slow
def test_an_underpowered_sweep_run_anyway_is_recorded_so(cli, isolated):
    tiny = [a for k, v in {**TINY, "max_steps": 1, "eval_samples": 4}.items() for a in ("--set", f"{k}={v}")]
    proc = cli("sweep", "--grid", "beta=0,0.1", "--baseline", "beta=0.1", "--compare", "diff > 0 and p < 0.05",
               "--seeds", "1-2", "--hypothesis", "h", *tiny, "--set", "eval_suite=none", "--underpowered",
               "--wandb", "disabled")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ((underpowered, power),) = rows(isolated / "grpo_lab.db", "SELECT underpowered, power FROM sweep")
    plan = json.loads(power)
    assert underpowered == 1 and plan["arms"][0]["reachable"] is False and plan["arms"][0]["seeds"] == 2
