"""A run outlives its store: the real PostgreSQL server (pgserver.py) stops while a real run trains. Stopped for
30 s, the run keeps its records in its spool and writes them, each once, when the server is back; stopped for
longer than the grace period, the run ends with its whole record in the spool, the row (once reachable) says
where it waits, and `grpo-lab sync` uploads it so that the run reads exactly as a run that never lost the server.
The spool never holds the store's password."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import QUICK_RUN, grpo_lab

from grpo_lab.store import spool
from grpo_lab.store.db import Run, Store, iso, now

pytestmark = pytest.mark.slow
STEPS = 40
RUN = [a for a in QUICK_RUN if a not in ("--max_steps", "2")] + ["--max_steps", str(STEPS), "--threads", "1"]
ENV = {"GRPO_LAB_DB": None, "GRPO_LAB_HEARTBEAT_SECONDS": "1"}


@pytest.fixture
def database(pg_server):
    name = pg_server.create_database()
    yield pg_server.url(name)
    pg_server.drop_database(name)


def sql(url: str, statement: str, *params):
    import psycopg

    with psycopg.connect(url) as conn:
        cursor = conn.execute(statement, params or None)
        return cursor.fetchall() if cursor.description else []


def start_run(url: str, cwd: Path, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in {**os.environ, **ENV}.items() if v is not None}
    return subprocess.Popen([sys.executable, "-c", "from grpo_lab.cli import main; main()", "run", *RUN,
                             "--hypothesis", "outlives its store", "--criteria", "held_out >= 0", "--db", url, *extra],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def wait_for_steps(url: str, proc: subprocess.Popen) -> int:
    """Wait until the run has recorded some steps (it is training), then say how many."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            n = sql(url, "SELECT count(*) FROM step")[0][0]
        except Exception:  # the tables do not exist yet
            n = 0
        if n:
            return n
        time.sleep(0.2)
    raise AssertionError("the run recorded no step in 10 minutes")


def record_of(url: str, run_id: str) -> dict:
    """Everything the store holds of a run, as a run that never lost the server would hold it: IDs, times and
    output folders aside."""
    (status, error, verdict, detail, summary, heartbeat, finished, duration, train_s) = sql(
        url, "SELECT status, error, verdict, verdict_detail, summary, heartbeat_at, finished_at, duration_s, "
        "train_seconds FROM run WHERE id = %s", run_id)[0]  # fmt: skip
    assert finished and heartbeat <= finished and duration > 0 and train_s > 0
    steps = sql(url, "SELECT step, metrics FROM step WHERE run_id = %s ORDER BY step", run_id)
    timing = ("time", "runtime", "per_second")  # TRL's clocks differ from run to run

    def steady(metrics: str) -> dict:
        return {k: v for k, v in json.loads(metrics).items() if not any(t in k for t in timing)}

    return {
        "status": status, "error": error, "verdict": verdict, "detail": detail,
        "summary": {k: v for k, v in json.loads(summary).items() if not any(t in k for t in timing)},
        "steps": [(s, steady(m)) for s, m in steps],
        "samples": sql(url, "SELECT step, idx, prompt, completion, reward, advantage, extracted FROM sample "
                       "WHERE run_id = %s ORDER BY step, idx", run_id),
        "results": sql(url, "SELECT stage, split, dimension, grp, correct, total FROM result WHERE run_id = %s "
                       "ORDER BY 1, 2, 3, 4", run_id),
        "predictions": sql(url, "SELECT stage, split, idx, prompt, answer, completion, extracted, correct FROM "
                           "prediction WHERE run_id = %s ORDER BY 1, 2, 3", run_id),
        "metrics": sql(url, "SELECT name, value FROM metric WHERE run_id = %s AND name NOT LIKE '%%time%%' "
                       "ORDER BY name", run_id),
        "notes": sql(url, "SELECT kind, text FROM note WHERE run_id = %s ORDER BY seq", run_id),
    }  # fmt: skip


def test_a_run_outlives_a_30_second_stop_of_its_server(pg_server, database, tmp_path):
    proc = start_run(database, tmp_path, "--output_dir", str(tmp_path / "out"), "--store_grace", "300")
    before = wait_for_steps(database, proc)
    pg_server.halt()
    try:
        kept = tmp_path / "out.spool.jsonl"
        deadline = time.monotonic() + 60
        while not kept.exists() and time.monotonic() < deadline:  # the next write finds the server gone
            time.sleep(0.2)
        assert kept.exists() and kept.stat().st_mode & 0o777 == 0o600
        time.sleep(30)
        assert pg_server.password not in kept.read_text()
    finally:
        pg_server.restart()
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, out + err
    (run_id, status, error), = sql(database, "SELECT id, status, error FROM run")  # fmt: skip
    assert (status, error) == ("finished", None) and f"run {run_id} finished" in out
    steps = [s for (s,) in sql(database, "SELECT step FROM step ORDER BY step")]
    assert steps == list(range(1, STEPS + 1)), (before, steps)  # every step once, those before the stop and after
    assert sql(database, "SELECT count(*) FROM sample") == [(STEPS * 4,)]
    stages = sql(database, "SELECT stage, count(*) FROM result WHERE dimension = 'overall' GROUP BY stage ORDER BY 1")
    assert stages == [("after", 3), ("before", 3)]
    assert not kept.exists()  # everything reached the store: the spool is gone
    assert pg_server.password not in out + err


def test_a_run_that_outlasts_the_grace_is_uploaded_by_sync_as_if_it_never_lost_the_server(pg_server, database,
                                                                                          tmp_path):  # fmt: skip
    proc = start_run(database, tmp_path, "--output_dir", str(tmp_path / "lost"), "--store_grace", "2", "--seed", "7")
    wait_for_steps(database, proc)
    pg_server.halt()
    try:
        out, err = proc.communicate(timeout=900)
    finally:
        pg_server.restart()
    kept = tmp_path / "lost.spool.jsonl"
    lines = err.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, out + err
    assert lines[0].startswith("grpo-lab: error: run ") and f"grpo-lab sync {kept}" in lines[0], lines[0]
    assert "finished, but the store" in lines[0] and "stayed unreachable for 2 s" in lines[0]
    assert kept.stat().st_mode & 0o777 == 0o600 and pg_server.password not in kept.read_text()
    (run_id,) = sql(database, "SELECT id FROM run")[0]

    # the next command that may write marks it crashed, and says where its record waits
    listed = grpo_lab(
        "runs", "--db", database, "--format", "json", env={"GRPO_LAB_DB": None, "GRPO_LAB_STALE_SECONDS": "1"}
    )
    assert listed.returncode == 0 and json.loads(listed.stdout)[0]["status"] == "crashed", listed.stderr
    ((error,),) = sql(database, "SELECT error FROM run")
    assert "finished without the store" in error and f"grpo-lab sync {kept}" in error

    synced = grpo_lab("sync", str(kept), "--db", database, env={"GRPO_LAB_DB": None})
    assert synced.returncode == 0 and f"of run {run_id}" in synced.stdout and "the run finished" in synced.stdout
    assert synced.stderr == "" and pg_server.password not in synced.stdout
    again = grpo_lab("sync", str(kept), "--db", database, env={"GRPO_LAB_DB": None})
    assert again.returncode == 0 and "already" in again.stdout, again.stderr

    # the same run (same seed and flags) recorded without losing the server holds exactly the same
    reference = start_run(database, tmp_path, "--output_dir", str(tmp_path / "kept"), "--seed", "7")
    out, err = reference.communicate(timeout=900)
    assert reference.returncode == 0, out + err
    (other,) = sql(database, "SELECT id FROM run WHERE id != %s", run_id)[0]
    lost, whole = record_of(database, run_id), record_of(database, other)
    assert lost["steps"] and [s for s, _ in lost["steps"]] == list(range(1, STEPS + 1))
    assert lost["status"] == "finished" and lost["error"] is None and lost["verdict"] == "confirmed"
    assert lost == whole
    shown = grpo_lab("show", run_id, "--db", database, env={"GRPO_LAB_DB": None, "COLUMNS": "200"})
    assert shown.returncode == 0 and "crash" not in shown.stdout and "spool" not in shown.stdout


def test_a_run_marked_crashed_while_it_lost_the_server_runs_again_when_it_is_back(pg_server, database, tmp_path):
    """The spool alone, on the real server: records spooled while it is stopped, the row marked crashed by another
    command meanwhile (its heartbeat went stale), then the server back: the run is running again and every record
    is there once, also one whose answer was lost with the connection (written again, found there, skipped)."""
    store = Store(database)
    run_id, host, pid = "spool001", socket.gethostname(), os.getpid()
    store.create_run(Run(id=run_id, exp_name="s", started_at=iso(now()), host=host, pid=pid, model_name="m"))
    kept = spool.Spooled(store, run_id, spool.path_for(tmp_path / "out"), host, pid)
    kept.record(run_id, steps=[(1, {"reward": 0.5})], samples=[(1, 0, "p", "c", 1.0, 0.0)])
    assert not kept.spooling and not kept.path.exists()
    pg_server.halt()
    try:
        kept.record(run_id, steps=[(2, {"reward": 0.6})])
        kept.heartbeat(run_id)
        kept.record(run_id, steps=[(3, {"reward": float("nan")})], results=[("after", "held_out", "overall", "", 1, 2)])
        assert kept.spooling and kept.path.exists() and kept.path.stat().st_mode & 0o777 == 0o600
        assert [json.loads(line)["op"] for line in kept.path.read_text().splitlines()[1:]] == [
            "record", "heartbeat", "record"]  # fmt: skip
        kept._lock.acquire()  # the drainer waits here while the server comes back and the row is marked
    finally:
        pg_server.restart()
    try:
        sql(database, "UPDATE run SET status = 'crashed', error = 'the run stopped without a word' WHERE id = %s",
            run_id)  # fmt: skip
    finally:
        kept._lock.release()
    assert kept.settle(60, "finished") is None  # everything reached the store
    assert not kept.path.exists()
    assert sql(database, "SELECT status, error FROM run") == [("running", None)]
    assert sql(database, "SELECT step FROM step ORDER BY step") == [(1,), (2,), (3,)]
    # a record written again (as after an answer lost with the connection) is there once
    spool.apply(store, run_id, {"op": "record", "at": iso(now()), "steps": [[2, {"reward": 0.6}]], "samples": [],
                                "results": [["after", "held_out", "overall", "", 1, 2]],
                                "predictions": []})  # fmt: skip
    assert sql(database, "SELECT count(*) FROM step") == [(3,)]
    assert sql(database, "SELECT count(*) FROM result") == [(1,)]
    store.close()
