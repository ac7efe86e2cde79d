"""The store on SQLite and on a real PostgreSQL server: migrations, refusing foreign or newer stores, prefixes,
concurrency, crash detection."""

import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import Boolean, MetaData, create_engine, insert, inspect

from grpo_lab.diagnostics import diagnose
from grpo_lab.store.db import MIGRATIONS, Run, RunNotFound, Store, StoreError, iso, now, pending

FIXTURES = Path(__file__).parent / "fixtures"
TABLES = ("run", "step", "sample", "result", "note")


def make_run(store, run_id="abcd1234", **values):
    base = dict(id=run_id, exp_name="x", started_at=iso(now()), host="h", model_name="m")
    store.create_run(Run(**{**base, **values}))


def one(path, sql: str):
    """The first value of a query, on a connection closed at once (an open one would keep WAL mode in place)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def old_store(backend, fixture: str) -> None:
    """The fixture store (a SQLite file of an older schema) at ``backend``: copied as a file on SQLite; on
    PostgreSQL, the same schema steps applied to an empty database and every row copied over."""
    if backend.name == "sqlite":
        shutil.copy(FIXTURES / fixture, backend.path)
        return
    old = sqlite3.connect(FIXTURES / fixture)
    applied = [r[0] for r in old.execute("SELECT name FROM _migrations ORDER BY rowid")]
    engine = create_engine(backend.db.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE _migrations (name VARCHAR PRIMARY KEY, applied_at VARCHAR NOT NULL)")
        for name, func in MIGRATIONS[: len(applied)]:
            assert name == applied[MIGRATIONS.index((name, func))]
            func(conn)
        meta = MetaData()
        meta.reflect(conn)
        for table in ["_migrations", *TABLES, "prediction"]:
            if table not in meta.tables:
                continue
            cursor = old.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cursor.description]
            booleans = {c.name for c in meta.tables[table].columns if isinstance(c.type, Boolean)}
            rows = [dict(zip(names, row, strict=True)) for row in cursor]
            for row in rows:
                row.update({k: bool(row[k]) for k in booleans if row[k] is not None})
            if rows:
                conn.execute(insert(meta.tables[table]), rows)
    engine.dispose()
    old.close()


def test_a_new_store_gets_every_migration_and_matches_the_models(backend):
    store = Store(backend.db)
    assert pending(store.engine) == []
    assert [r[0] for r in backend.sql("SELECT name FROM _migrations ORDER BY applied_at, name")] == [
        name for name, _ in MIGRATIONS
    ]
    # the migrations build exactly the tables the SQLModel classes describe
    from sqlmodel import SQLModel

    found = inspect(store.engine)
    for name, table in SQLModel.metadata.tables.items():
        assert {c["name"] for c in found.get_columns(name)} == {c.name for c in table.columns}, name
    store.close()


def test_a_store_opens_again_from_its_url_and_shows_no_password(backend):
    store = Store(backend.db)
    make_run(store)
    again = Store(store.url)  # a worker process opens the store its parent names
    assert again.find_run("abcd1234").run.id == "abcd1234"
    if backend.name == "postgresql":
        password = backend.db.split(":")[2].split("@")[0]
        assert password in store.url and password not in str(store.location)
    again.close()
    store.close()


def test_a_closed_sqlite_store_is_left_in_rollback_journal_mode(tmp_path):
    """WAL while it is written; the last writer to close checkpoints it and leaves a plain file behind."""
    path = tmp_path / "s.db"
    store = Store(str(path))
    make_run(store)
    assert one(path, "PRAGMA journal_mode") == "wal"
    other = Store(str(path))  # a second writer: the first to close leaves WAL in place for it
    store.close()
    assert Path(f"{path}-wal").exists()
    other.close()
    assert one(path, "PRAGMA journal_mode") == "delete"
    assert not Path(f"{path}-wal").exists() and not Path(f"{path}-shm").exists()
    assert one(path, "SELECT id FROM run") == "abcd1234"


def test_upgrading_a_first_version_store_keeps_every_row(backend):
    old_store(backend, "store_v1.db")
    old = sqlite3.connect(FIXTURES / "store_v1.db")
    counts = {t: old.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    run_id = old.execute("SELECT id FROM run").fetchone()[0]
    store = Store(backend.db)
    assert pending(store.engine) == []
    for table, n in counts.items():
        assert backend.sql(f"SELECT count(*) FROM {table}")[0][0] == n, table
    assert counts["run"] == 1 and counts["step"] == 3 and counts["note"] == 1
    view = store.find_run(run_id)
    assert view.run.hypothesis == "fixture: a run recorded by schema v1"
    assert len(store.steps(view.run.id)) == 3 and store.notes(view.run.id)[0].text == "v1 learning"
    store.close()


def test_upgrading_a_v3_store_names_every_number_once_and_marks_its_runs(backend):
    """Two replication runs recorded before suites were held out (fixture cut from the old research store)."""
    old_store(backend, "store_v3.db")
    summaries = dict(sqlite3.connect(FIXTURES / "store_v3.db").execute("SELECT id, summary FROM run"))
    store = Store(backend.db)
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
    store.close()


def test_upgraded_runs_have_the_grpo_settings_they_ran_with_and_say_so(backend):
    """m008: the knobs that became flags are filled in with the values grpo-lab gave TRL then (not guessed: fixed
    in training.py, or TRL's defaults), with a note saying so; a resume or a rerun reads them as flags."""
    from grpo_lab.config import SEED_GRPO, RunConfig

    old_store(backend, "store_v3.db")
    store = Store(backend.db)
    for run_id in ("ezwfwee9", "0lctqdvi"):
        config = store.find_run(run_id).config
        assert {k: config[k] for k in SEED_GRPO} == SEED_GRPO
        assert config["trl"] == {} and config["task"] is None and config["reserve"] == ["arith-v1", "mixed-v1"]
        assert config["upgrade_note"].startswith("m008: loss_type, scale_rewards") and "TRL " in config["upgrade_note"]
        assert RunConfig.from_dict(config).loss_type == "grpo"
    assert backend.sql("SELECT count(*) FROM sample WHERE extracted IS NOT NULL") == [(0,)]
    store.close()


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"my precious notes\n" * 100)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a grpo-lab store"):
        Store(str(path))
    with pytest.raises(StoreError, match="not a grpo-lab store"):
        Store(str(path), readonly=True)
    assert path.read_bytes() == before


def test_another_database_is_refused_untouched(backend):
    backend.execute("CREATE TABLE customers (id INTEGER)")
    backend.close()
    before = backend.path.read_bytes() if backend.path else None
    with pytest.raises(StoreError, match="not a grpo-lab store"):
        Store(backend.db)
    if backend.path:
        assert backend.path.read_bytes() == before and not Path(f"{backend.path}-wal").exists()
    assert backend.sql("SELECT count(*) FROM customers") == [(0,)]


def test_a_store_from_a_newer_grpo_lab_is_refused_untouched(backend):
    Store(backend.db).close()
    backend.execute("INSERT INTO _migrations VALUES ('m999_from_the_future', '2030-01-01')")
    backend.close()
    before = backend.path.read_bytes() if backend.path else None
    for readonly in (False, True):
        with pytest.raises(StoreError, match="newer grpo-lab.*m999_from_the_future"):
            Store(backend.db, readonly=readonly)
    if backend.path:
        assert backend.path.read_bytes() == before


def test_run_id_prefixes(backend):
    store = Store(backend.db)
    make_run(store, "abcd1234")
    make_run(store, "abce5678")
    make_run(store, "ab_d0000")
    assert store.find_run("abcd").run.id == "abcd1234"
    assert store.find_run("abce5678").run.id == "abce5678"
    with pytest.raises(RunNotFound, match="ambiguous"):
        store.find_run("abc")
    with pytest.raises(RunNotFound, match="no run with ID 'zz'"):
        store.find_run("zz")
    with pytest.raises(RunNotFound):
        store.find_run("%")  # LIKE wildcards are escaped
    assert store.find_run("ab_").run.id == "ab_d0000"  # "_" matches itself only
    store.close()


def test_reap_marks_dead_and_stale_runs_crashed(backend):
    store = Store(backend.db)
    make_run(store, "deadpid1", pid=12345, host="here")
    make_run(store, "stale001", pid=1, host="elsewhere", heartbeat_at="2020-01-01T00:00:00+00:00")
    make_run(store, "alive001", pid=1, host="here")
    crashed = store.reap(host="here", alive=lambda pid: pid != 12345)
    assert sorted(crashed) == ["deadpid1", "stale001"]
    assert store.find_run("alive001").run.status == "running"
    dead = store.find_run("deadpid1").run
    assert dead.status == "crashed" and "process is gone" in dead.error and dead.finished_at
    store.close()


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
    store.finish_run(run_id, "finished", metrics={"steps": 150.0})
    store.close()
""")


def test_concurrent_writers_lose_nothing(backend):
    """Five processes create the store and write to it at once: no 'database is locked', no lost rows, and the
    schema is migrated exactly once."""
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, backend.db, f"writer{i:02d}"], stderr=subprocess.PIPE,
                              text=True) for i in range(5)]  # fmt: skip
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert backend.sql("SELECT count(*) FROM run WHERE status = 'finished'") == [(5,)]
    assert backend.sql("SELECT count(*) FROM step") == [(5 * 150,)]
    assert backend.sql("SELECT count(*) FROM sample") == [(5 * 300,)]
    assert backend.sql("SELECT count(*) FROM note") == [(5,)]
    assert backend.sql("SELECT count(*) FROM metric") == [(5,)]
    assert backend.sql("SELECT count(*) FROM _migrations") == [(len(MIGRATIONS),)]
    if backend.path:  # the last writer to close left it in rollback-journal mode
        backend.close()
        assert one(backend.path, "PRAGMA journal_mode") == "delete"


def test_the_light_reader_hands_over_when_an_upgrade_or_a_reap_is_due(tmp_path):
    from grpo_lab.store.sqlite_read import due_writes, prepare

    old = tmp_path / "old.db"
    shutil.copy(FIXTURES / "store_v1.db", old)
    assert due_writes(old)[0] == [name for name, _ in MIGRATIONS[1:]]  # migrations pending
    assert prepare(old) == [] and due_writes(old) == ([], [])  # upgraded through the full store
    fresh = tmp_path / "s.db"
    store = Store(str(fresh))
    make_run(store, "alive001", pid=1, host=socket.gethostname())
    assert due_writes(fresh) == ([], [])
    make_run(store, "dead0001", pid=2**22 + 12345, host=socket.gethostname())
    assert due_writes(fresh) == ([], [("dead0001", "its process is gone")])  # waits to be marked crashed
    store.close()
    assert prepare(fresh) == [] and due_writes(fresh) == ([], [])


def test_a_reading_store_marks_a_dead_run_crashed(backend):
    store = Store(backend.db)
    make_run(store, "dead0001", pid=2**22 + 12345, host=socket.gethostname())
    store.close()
    reader = Store(backend.db, readonly=True)
    assert reader.notices == [] and reader.find_run("dead0001").run.status == "crashed"
    reader.close()


def test_compare_marks_a_dead_run_crashed(cli, backend):
    store = Store(backend.db)
    make_run(store, "dead0001", pid=2**22 + 12345, host=socket.gethostname())
    store.close()
    proc = cli("compare", "--format", "csv", "--db", backend.db)
    assert proc.returncode == 0, proc.stderr
    assert "dead0001" in proc.stdout and "crashed" in proc.stdout
    assert backend.sql("SELECT status FROM run") == [("crashed",)]


def test_a_password_recorded_by_an_older_grpo_lab_is_never_shown(cli, backend):
    store = Store(backend.db)
    make_run(store, command="grpo-lab run --db postgresql://me:hunter2@db/lab", resolved_command="grpo-lab run",
             environment=json.dumps({"GRPO_LAB_DB": "postgresql://me:hunter2@db/lab"}))  # fmt: skip
    store.close()
    view = Store(backend.db, readonly=True).find_run("abcd1234")
    assert view.run.command == "grpo-lab run --db postgresql://me@db/lab"
    assert view.environment == {"GRPO_LAB_DB": "postgresql://me@db/lab"}
    for command in (["show", "abcd1234"], ["journal", "render", "--stdout"]):
        proc = cli(*command, "--db", backend.db, env={"COLUMNS": "250"})
        assert proc.returncode == 0 and "postgresql://me@db/lab" in proc.stdout and "hunter2" not in proc.stdout
