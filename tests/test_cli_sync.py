"""grpo-lab sync: a run's spool (what it kept while its store was unreachable) uploaded into the store, each record
once and at the time it was made; a second sync writes nothing; a spool not uploaded yet blocks a resume that would
write over it. The real server's outages are in test_outage.py; this is the command itself, on a SQLite store."""

import json
import socket

from conftest import sql_rows

from grpo_lab.store.db import Run, Store

AT = "2026-01-02T10:0{}:00+00:00"


def spool_text(run_id: str, *ops: dict, end: bool = True) -> str:
    header = {"grpo_lab_spool": 1, "run_id": run_id, "store": "grpo_lab.db", "created_at": AT.format(1)}
    lines = [header, *ops] + ([{"op": "end", "at": AT.format(6), "status": "finished", "error": None}] if end else [])
    return "".join(json.dumps(line) + "\n" for line in lines)


PREDICTION = {"prompt": "1 + 1 = ", "answer": "2", "completion": "2", "extracted": "2", "correct": True,
              "task_type": "arithmetic", "operation": "+", "difficulty": "easy"}  # fmt: skip
OPS = [
    {"op": "record", "at": AT.format(1), "steps": [[1, {"reward": 0.1}], [2, {"reward": 0.2, "kl": float("nan")}]],
     "samples": [[2, 0, "1 + 1 = ", "2", 1.0, 0.5]], "results": [["after", "held_out", "overall", "", 1, 2]],
     "predictions": [["after", "held_out", 0, PREDICTION]]},
    {"op": "heartbeat", "at": AT.format(2)},
    {"op": "note", "at": AT.format(3), "kind": "comment", "text": "resumed from checkpoint-1 (step 1); finished: ok"},
    {"op": "finish", "at": AT.format(5), "status": "finished", "error": None,
     "metrics": {"held_out": 0.5, "steps": 2.0}, "values": {"train_seconds": 12.5, "verdict": "confirmed",
                                                           "verdict_detail": "held_out 0.5 >= 0"}},
]  # fmt: skip


def lost_run(db, run_id: str = "sync0001", pid: int = 2**22 + 12345, output_dir: str = "out") -> None:
    """A run that recorded its first step, then lost the store and ended without it (its process is gone)."""
    store = Store(str(db))
    store.create_run(Run(id=run_id, exp_name="e", started_at=AT.format(0), host=socket.gethostname(), pid=pid,
                         model_name="m", output_dir=output_dir))  # fmt: skip
    store.record(run_id, steps=[(1, {"reward": 0.1})], at=AT.format(0))
    store.close()


def test_sync_uploads_a_spool_as_the_run_would_have_written_it(cli, isolated):
    db = isolated / "grpo_lab.db"
    lost_run(db)
    (isolated / "out.spool.jsonl").write_text(spool_text("sync0001", *OPS))
    listed = cli("runs", "--format", "json")  # the crash mark says where the record waits
    assert json.loads(listed.stdout)[0]["status"] == "crashed"
    (error,) = sql_rows(db, "SELECT error FROM run")[0]
    assert "finished without the store" in error and f"grpo-lab sync {isolated / 'out.spool.jsonl'}" in error
    resumed = cli("resume", "sync0001")  # a resume would write over the records: refused until they are uploaded
    assert resumed.returncode == 2 and "grpo-lab sync" in resumed.stderr and "not in the store yet" in resumed.stderr

    proc = cli("sync", "out.spool.jsonl")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.startswith("uploaded 2 steps, 1 samples, 1 results, the run's ending of run sync0001 to ")
    ending = sql_rows(
        db, "SELECT status, error, finished_at, duration_s, train_seconds, verdict, heartbeat_at FROM run"
    )
    assert ending == [("finished", None, AT.format(5), 300.0, 12.5, "confirmed", AT.format(2))]
    assert sql_rows(db, "SELECT step, metrics FROM step ORDER BY step") == [
        (1, '{"reward": 0.1}'), (2, '{"reward": 0.2, "kl": NaN}')]  # step 1 was there already: once  # fmt: skip
    assert sql_rows(db, "SELECT count(*) FROM sample") == [(1,)]
    assert sql_rows(db, "SELECT correct, total FROM result") == [(1, 2)]
    assert sql_rows(db, "SELECT extracted, correct FROM prediction") == [("2", 1)]
    assert sql_rows(db, "SELECT name, value FROM metric ORDER BY name") == [("held_out", 0.5), ("steps", 2.0)]
    assert sql_rows(db, "SELECT kind, created_at FROM note") == [("comment", AT.format(3))]
    assert json.loads((isolated / "out.spool.jsonl").read_text().splitlines()[-1])["op"] == "synced"

    again = cli("sync", "out.spool.jsonl")
    assert again.returncode == 0 and "already; nothing to do" in again.stdout
    assert sql_rows(db, "SELECT count(*) FROM note") == [(1,)] and sql_rows(db, "SELECT count(*) FROM step") == [(2,)]


def test_a_spool_cut_short_uploads_what_it_holds_and_says_so(cli, isolated):
    db = isolated / "grpo_lab.db"
    lost_run(db)
    text = spool_text("sync0001", *OPS[:2], end=False) + '{"op": "record", "at": "2026-01-'  # killed mid-line
    (isolated / "out.spool.jsonl").write_text(text)
    proc = cli("sync", "out.spool.jsonl")
    assert proc.returncode == 0 and "the spool holds no ending" in proc.stdout
    assert "was cut short" in proc.stderr and len(proc.stderr.splitlines()) == 1
    (status, error) = sql_rows(db, "SELECT status, error FROM run")[0]
    assert status == "crashed" and "before its ending was recorded" in error and "uploaded with grpo-lab sync" in error
    assert sql_rows(db, "SELECT step FROM step ORDER BY step") == [(1,), (2,)]


def test_a_spool_of_a_run_still_running_is_left_to_it(cli, isolated):
    import os

    db = isolated / "grpo_lab.db"
    lost_run(db, pid=os.getpid())  # alive: it uploads its spool itself when the store answers
    store = Store(str(db))
    store.heartbeat("sync0001")
    store.close()
    (isolated / "out.spool.jsonl").write_text(spool_text("sync0001", *OPS))
    before = db.read_bytes()
    proc = cli("sync", "out.spool.jsonl")
    assert proc.returncode == 2 and "is still running" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert db.read_bytes() == before


def test_a_grace_from_the_environment_that_is_no_number_of_seconds_is_refused_before_anything(cli, isolated):
    """$GRPO_LAB_STORE_GRACE is read at a run's end: a bad value is refused when the run (or resume) starts, in
    one line, with no store written, not after the training."""
    for value in ("abc", "nan", "-1", "1e99", "\x1b[2J"):
        for command in (["run", "--preset", "cpu-quick", "--hypothesis", "h"], ["resume", "aaaa0001"]):
            proc = cli(*command, env={"GRPO_LAB_STORE_GRACE": value})
            assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
            assert "$GRPO_LAB_STORE_GRACE=" in proc.stderr and "\x1b" not in proc.stderr
    assert not (isolated / "grpo_lab.db").exists() and not (isolated / "runs").exists()
    assert cli("run", "--preset", "cpu-quick", "--dry_run", env={"GRPO_LAB_STORE_GRACE": "12.5"}).returncode == 0
