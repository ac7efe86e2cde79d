"""The store: migrations, refusing foreign or newer files, prefixes, concurrency, crash detection."""

import json
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from grpo_lab.diagnostics import diagnose
from grpo_lab.store.db import MIGRATIONS, Run, RunNotFound, Store, StoreError, iso, now, pending

FIXTURES = Path(__file__).parent / "fixtures"


def make_run(store, run_id="abcd1234", **values):
    base = dict(id=run_id, exp_name="x", started_at=iso(now()), host="h", model_name="m")
    store.create_run(Run(**{**base, **values}))


def columns(path, table):
    return {r[1] for r in sqlite3.connect(path).execute(f"PRAGMA table_info({table})")}


def test_a_new_store_gets_every_migration_and_matches_the_models(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    assert pending(store.engine) == []
    applied = [r[0] for r in sqlite3.connect(tmp_path / "s.db").execute("SELECT name FROM _migrations")]
    assert applied == [name for name, _ in MIGRATIONS]
    # the migrations build exactly the tables the SQLModel classes describe
    from sqlmodel import SQLModel

    for name, table in SQLModel.metadata.tables.items():
        assert columns(tmp_path / "s.db", name) == {c.name for c in table.columns}, name
    assert sqlite3.connect(tmp_path / "s.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_upgrading_a_first_version_store_keeps_every_row(tmp_path):
    path = tmp_path / "old.db"
    shutil.copy(FIXTURES / "store_v1.db", path)
    old = sqlite3.connect(path)
    counts = {
        t: old.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("run", "step", "sample", "result", "note")
    }
    run_before = old.execute("SELECT * FROM run").fetchone()
    old.close()
    store = Store(f"sqlite:///{path}")
    assert pending(store.engine) == []
    conn = sqlite3.connect(path)
    for table, n in counts.items():
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == n, table
    assert counts["run"] == 1 and counts["step"] == 3 and counts["note"] == 1
    view = store.find_run(run_before[0])
    assert view.run.hypothesis == "fixture: a run recorded by schema v1"
    assert len(store.steps(view.run.id)) == 3 and store.notes(view.run.id)[0].text == "v1 learning"


def test_upgrading_a_v3_store_names_every_number_once_and_marks_its_runs(tmp_path):
    """Two replication runs recorded before suites were held out (fixture cut from the old research store)."""
    path = tmp_path / "v3.db"
    shutil.copy(FIXTURES / "store_v3.db", path)
    old = sqlite3.connect(path)
    summaries = dict(old.execute("SELECT id, summary FROM run"))
    old.close()
    store = Store(f"sqlite:///{path}")
    base, mixed = store.find_run("ezwfwee9"), store.find_run("0lctqdvi")
    for view in (base, mixed):
        summary = json.loads(summaries[view.run.id])
        assert json.loads(view.run.summary) == summary  # kept as it was
        assert not view.run.suites_disjoint and view.run.verdict == "unchecked"
        m = view.metrics
        assert m["held_out"] == summary["held_out_acc_after"] and m["arith-v1"] == summary["arith-v1_acc_after"]
        assert m["final_reward"] == summary["reward"] and m["kl_last"] == summary["kl_last"]
        assert m["arith-v1_gain"] == pytest.approx(summary["arith-v1_acc_after"] - summary["arith-v1_acc_before"])
        assert m["arith-v1[*]"] == summary["arith-v1_acc_after:operation=*"]
    # the contamination the trust issue counted by hand: 57 of arith-v1 in seed 1's training set
    assert base.metrics["arith-v1_overlap"] == 57 and "mixed-v1_overlap" not in base.metrics
    assert mixed.metrics["mixed-v1_overlap"] == 35 and mixed.metrics["arith-v1_overlap"] == 27
    assert "contaminated" in [f.code for f in diagnose(base.config, base.metrics)]


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"my precious notes\n" * 100)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a grpo-lab store"):
        Store(f"sqlite:///{path}")
    assert path.read_bytes() == before


def test_another_sqlite_database_is_refused_untouched(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="SQLite database but not a grpo-lab store"):
        Store(f"sqlite:///{path}")
    assert path.read_bytes() == before and not Path(f"{path}-wal").exists()


def test_a_store_from_a_newer_grpo_lab_is_refused_untouched(tmp_path):
    path = tmp_path / "new.db"
    Store(f"sqlite:///{path}").close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("INSERT INTO _migrations VALUES ('m999_from_the_future', '2030-01-01')")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="newer grpo-lab.*m999_from_the_future"):
        Store(f"sqlite:///{path}")
    assert path.read_bytes() == before


def test_run_id_prefixes(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    make_run(store, "abcd1234")
    make_run(store, "abce5678")
    assert store.find_run("abcd").run.id == "abcd1234"
    assert store.find_run("abce5678").run.id == "abce5678"
    with pytest.raises(RunNotFound, match="ambiguous"):
        store.find_run("abc")
    with pytest.raises(RunNotFound, match="no run with ID 'zz'"):
        store.find_run("zz")
    with pytest.raises(RunNotFound):
        store.find_run("%")  # LIKE wildcards are escaped


def test_reap_marks_dead_and_stale_runs_crashed(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    make_run(store, "deadpid1", pid=12345, host="here")
    make_run(store, "stale001", pid=1, host="elsewhere", heartbeat_at="2020-01-01T00:00:00+00:00")
    make_run(store, "alive001", pid=1, host="here")
    crashed = store.reap(host="here", alive=lambda pid: pid != 12345)
    assert sorted(crashed) == ["deadpid1", "stale001"]
    assert store.find_run("alive001").run.status == "running"
    dead = store.find_run("deadpid1").run
    assert dead.status == "crashed" and "process is gone" in dead.error and dead.finished_at


WRITER = textwrap.dedent("""
    import sys
    from grpo_lab.store.db import Run, Store, iso, now
    url, run_id = sys.argv[1], sys.argv[2]
    store = Store(url)
    store.create_run(Run(id=run_id, exp_name=run_id, started_at=iso(now()), host="h", model_name="m"))
    for step in range(1, 151):
        store.record(run_id, steps=[(step, {"reward": step / 150})],
                     samples=[(step, i, "p", "c", 1.0, 0.0) for i in range(2)])
    store.add_note(run_id, "done", "result")
    store.finish_run(run_id, "finished")
""")


def test_concurrent_writers_lose_nothing(tmp_path):
    """Five processes create the store and write to it at once: no 'database is locked', no lost rows."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, f"writer{i:02d}"], stderr=subprocess.PIPE, text=True)
             for i in range(5)]  # fmt: skip
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    conn = sqlite3.connect(tmp_path / "shared.db")
    assert conn.execute("SELECT count(*) FROM run WHERE status = 'finished'").fetchone()[0] == 5
    assert conn.execute("SELECT count(*) FROM step").fetchone()[0] == 5 * 150
    assert conn.execute("SELECT count(*) FROM sample").fetchone()[0] == 5 * 300
    assert conn.execute("SELECT count(*) FROM note").fetchone()[0] == 5
    assert conn.execute("SELECT count(*) FROM _migrations").fetchone()[0] == len(MIGRATIONS)


def test_the_light_reader_hands_over_when_an_upgrade_or_a_reap_is_due(tmp_path):
    from grpo_lab.store.sqlite_read import ready_to_read

    old = tmp_path / "old.db"
    shutil.copy(FIXTURES / "store_v1.db", old)
    assert not ready_to_read(old)  # migrations pending
    Store(f"sqlite:///{old}")
    assert ready_to_read(old)
    fresh = tmp_path / "s.db"
    store = Store(f"sqlite:///{fresh}")
    make_run(store, "alive001", pid=1, host=__import__("socket").gethostname())
    assert ready_to_read(fresh)
    make_run(store, "dead0001", pid=2**22 + 12345, host=__import__("socket").gethostname())
    assert not ready_to_read(fresh)  # a dead run waits to be marked crashed


def test_compare_marks_a_dead_run_crashed(cli, isolated):
    import socket

    store = Store(f"sqlite:///{isolated / 'grpo_lab.db'}")
    make_run(store, "dead0001", pid=2**22 + 12345, host=socket.gethostname())
    out = cli("compare", "--format", "csv").stdout
    assert "dead0001" in out and "crashed" in out
