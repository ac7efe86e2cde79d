"""Readers never write on PostgreSQL: a role that may only SELECT runs every reading command on a store with a
run that looks crashed, and on an empty database, and the server's log (every statement of that role) shows no
write attempted; runs, compare, compare --sweep and their --where refusals on PostgreSQL as on SQLite; errors that
tell an unreachable server, failed authentication, a missing database, a missing privilege, a database that is no
grpo-lab store and a newer grpo-lab's store apart."""

import json
import os
import re
import secrets
import socket

import pytest
from conftest import grpo_lab

from grpo_lab import sweep as sw
from grpo_lab.store.db import Run, Store, iso, now

WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE|MERGE|CREATE|ALTER|DROP|TRUNCATE|GRANT|REVOKE|COPY|LOCK|COMMENT|"
                    r"VACUUM|REINDEX|CLUSTER|SELECT\s+pg_advisory)", re.I)  # fmt: skip
STATEMENT = re.compile(r"LOG:\s+(?:statement|execute [^:]*):\s(.*)")
NO_ENV = {"GRPO_LAB_DB": None, "COLUMNS": "200"}


def make_store(url: str) -> dict:
    """Two finished runs with steps and results, a sweep of queued runs, and a run whose process is gone."""
    store = Store(url)
    for i, beta in enumerate((0.0, 0.1)):
        run_id = f"read{i:04d}"
        store.create_run(Run(id=run_id, exp_name=f"beta{beta}", started_at=iso(now()), host="h", model_name="m",
                             config=json.dumps({"beta": beta, "seed": 1, "use_vllm": False}),
                             hypothesis="readers never write"))  # fmt: skip
        store.record(run_id, steps=[(s, {"reward": s / 10, "kl": 0.01}) for s in (1, 2)],
                     results=[(st, "held_out", "overall", "", 5 + i, 10) for st in ("before", "after")])  # fmt: skip
        store.finish_run(run_id, "finished", metrics={"held_out": 0.5 + i / 10, "held_out_before": 0.5})
    spec = sw.build({"name": "readers", "hypothesis": "h", "seeds": "1-2", "base": {"model_name": "tiny-arith"},
                     "grid": {"beta": [0, 0.1]}, "baseline": "beta=0.1"})  # fmt: skip
    sweep_id = sw.queue(store, spec, "inline", ["grpo-lab", "sweep"]).sweep.id
    for k, run in enumerate(store.sweep_runs(sweep_id)):  # as if they ran
        store.finish_run(run.id, "finished", metrics={"arith-v1": 0.2 + k / 20, "held_out": 0.4})
    store.create_run(Run(id="dead0001", exp_name="dead", started_at=iso(now()), host=socket.gethostname(),
                         pid=2**22 + 12345, model_name="m"))  # fmt: skip
    store.close()
    return {"sweep": sweep_id}


def reader(pg_server, database: str, select: bool) -> str:
    """A role that may connect to ``database`` and, if ``select``, read its tables; every statement it sends is
    in the server's log. Its URL."""
    name, password = f"reader{os.getpid()}{secrets.token_hex(3)}", secrets.token_hex(8)
    pg_server.create_role(name, password)
    with pg_server.admin() as conn:
        conn.execute(f"GRANT CONNECT ON DATABASE {database} TO {name}")
        conn.execute(f"ALTER ROLE {name} SET log_statement = 'all'")
    with pg_server.admin(database) as conn:
        conn.execute(f"GRANT USAGE ON SCHEMA public TO {name}")
        if select:
            conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {name}")
    return pg_server.url(database, role=name, secret=password)


def statements(log: str) -> list[str]:
    return [m.group(1) for m in map(STATEMENT.search, log.splitlines()) if m]


COMMANDS = [
    ["runs"],
    ["runs", "-n", "0", "--format", "json"],
    ["compare"],
    ["compare", "--where", "beta=0.1 and held_out>=0.5 and use_vllm=false", "--format", "csv"],
    ["compare", "--sort", "-held_out", "--limit", "1"],
    ["compare", "--group-by-seed", "--baseline", "beta0.1", "--metric", "held_out"],
    ["compare", "--sweep", "readers"],
    ["show", "read0001"],
    ["diff", "read0000", "read0001"],
    ["journal", "render", "--stdout"],
    ["journal", "render", "--sweep", "readers", "--stdout"],
    ["sweep", "status", "readers"],
    ["sweep", "list"],
]


def test_a_role_that_may_only_select_reads_everything_and_writes_nothing(pg_server, tmp_path):
    database = pg_server.create_database()
    try:
        url = pg_server.url(database)
        make_store(url)
        url_r = reader(pg_server, database, select=True)
        start = len(pg_server.log())
        for command in [*COMMANDS, ["journal", "render", "--out", str(tmp_path / "j.md")]]:
            proc = grpo_lab(*command, "--db", url_r, env=NO_ENV, cwd=tmp_path)
            assert proc.returncode == 0 and proc.stderr == "", (command, proc.stdout, proc.stderr)
        assert "Paired by seed" in grpo_lab("compare", "--group-by-seed", "--baseline", "beta0.1", "--db", url_r,
                                            env=NO_ENV).stdout  # fmt: skip
        where = grpo_lab("compare", "--where", "beta=0.1 and model=m", "--format", "csv", "--db", url_r,
                         env=NO_ENV).stdout  # fmt: skip
        assert [line.split(",")[0] for line in where.splitlines()[1:]] == ["read0001"]
        report = grpo_lab("report", "--out", str(tmp_path / "r.html"), "--db", url_r, env=NO_ENV, cwd=tmp_path)
        assert report.returncode == 0 and report.stderr == "", report.stderr
        assert "read0001" in (tmp_path / "r.html").read_text()
        log = pg_server.log()[start:]
        sent = statements(log)
        assert len(sent) > 20 and any("FROM run" in s for s in sent)  # the log holds the reader's statements
        assert [s for s in sent if WRITES.match(s)] == [] and "ERROR" not in log
        with pg_server.admin(database) as conn:
            assert conn.execute("SELECT status FROM run WHERE id = 'dead0001'").fetchone() == ("running",)
        # a role that may write marks it crashed (reading only, too)
        assert grpo_lab("runs", "--db", url, env=NO_ENV).returncode == 0
        with pg_server.admin(database) as conn:
            assert conn.execute("SELECT status FROM run WHERE id = 'dead0001'").fetchone() == ("crashed",)
    finally:
        pg_server.drop_database(database)


def test_readers_say_there_is_no_store_in_an_empty_database_and_create_nothing(pg_server, tmp_path):
    database = pg_server.create_database()
    try:
        url_r = reader(pg_server, database, select=True)
        start = len(pg_server.log())
        for command in [*COMMANDS, ["journal", "render", "--out", str(tmp_path / "j.md")]]:
            proc = grpo_lab(*command, "--db", url_r, env=NO_ENV, cwd=tmp_path)
            lines = proc.stderr.strip().splitlines()
            assert proc.returncode == 2 and len(lines) == 1, (command, proc.stderr)
            assert lines[0].startswith("grpo-lab: error: no grpo-lab store in this database"), lines[0]
        assert list(tmp_path.iterdir()) == []  # no empty journal either
        # the owner of the database, who may create tables, gets the same line and creates none
        owner = grpo_lab("compare", "--db", pg_server.url(database), env=NO_ENV)
        assert owner.returncode == 2 and "no grpo-lab store in this database" in owner.stderr
        dry = grpo_lab("sweep", "--grid", "beta=0,0.1", "--hypothesis", "h", "--dry_run", "--db",
                       pg_server.url(database), env=NO_ENV)  # fmt: skip
        assert dry.returncode == 0 and "no estimate" in dry.stdout, dry.stderr
        sent = statements(pg_server.log()[start:])
        assert sent and [s for s in sent if WRITES.match(s)] == []
        with pg_server.admin(database) as conn:
            assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)
    finally:
        pg_server.drop_database(database)


def one_line(proc, *fragments):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("grpo-lab: error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_errors_tell_apart_what_is_wrong_with_a_server(pg_server, tmp_path):
    database = pg_server.create_database()
    try:
        url = pg_server.url(database)
        make_store(url)
        secret = pg_server.password
        cases = [
            (url.replace(secret, "wrong"), "authentication failed"),
            (pg_server.url("nosuchdatabase"), "the database does not exist"),
            (url.replace(f":{pg_server.port}/", ":1/"), "cannot reach the store"),
            (reader(pg_server, database, select=False), "permission denied"),
        ]
        for db, fragment in cases:
            for command in (["runs"], ["show", "read0000"]):
                line = one_line(grpo_lab(*command, "--db", db, env=NO_ENV), fragment)
                assert secret not in line
        with pg_server.admin(database) as conn:
            conn.execute("INSERT INTO _migrations VALUES ('m999_from_the_future', '2030-01-01')")
        for command in (["runs"], ["compare"], ["show", "read0000"], ["note", "read0000", "x"]):
            one_line(grpo_lab(*command, "--db", url, env=NO_ENV), "written by a newer grpo-lab")
        other = pg_server.create_database()
        try:
            with pg_server.admin(other) as conn:
                conn.execute("CREATE TABLE customers (id integer)")
            for command in (["runs"], ["show", "x"], ["note", "x", "y"]):
                one_line(grpo_lab(*command, "--db", pg_server.url(other), env=NO_ENV), "is not a grpo-lab store")
        finally:
            pg_server.drop_database(other)
    finally:
        pg_server.drop_database(database)


@pytest.mark.parametrize("where", ["held_out>=abc", "duration<soon", "beta=x", "use_vllm=maybe"])
def test_where_values_of_the_wrong_type_are_one_line_on_both_databases(backend, where):
    Store(backend.db).close()
    field = where.split("<")[0].split(">")[0].split("=")[0]
    line = one_line(grpo_lab("compare", "--where", where, "--db", backend.db, env=NO_ENV), f"--where {where}")
    assert f"{field} is a" in line


def test_compare_sweep_and_text_columns_on_both_databases(backend):
    ids = make_store(backend.db)
    proc = grpo_lab("compare", "--sweep", "readers", "--format", "md", "--db", backend.db, env=NO_ENV)
    assert proc.returncode == 0, proc.stderr
    assert "Paired by seed" in proc.stdout and ids["sweep"]
    named = grpo_lab("compare", "--where", "name=beta0.1", "--format", "csv", "--db", backend.db, env=NO_ENV)
    assert named.returncode == 0 and [r.split(",")[0] for r in named.stdout.splitlines()[1:]] == ["read0001"]
    number = grpo_lab("compare", "--where", "id=1234", "--format", "csv", "--db", backend.db, env=NO_ENV)
    assert number.returncode == 0 and number.stdout.splitlines()[1:] == [], number.stderr


def test_runs_and_compare_on_postgresql_import_neither_sqlalchemy_nor_sqlmodel(pg_server):
    import subprocess
    import sys

    database = pg_server.create_database()
    try:
        url = pg_server.url(database)
        make_store(url)
        for command in (["runs"], ["compare"], ["compare", "--where", "held_out>=0.5", "--sort", "-held_out"]):
            code = (
                f"import sys; from grpo_lab.cli import main; sys.argv={['grpo-lab', *command, '--db', url]!r};\n"
                "try: main()\nexcept SystemExit as e: print('EXIT', e.code)\n"
                "print('HEAVY', [m for m in ('sqlalchemy', 'sqlmodel', 'pydantic', 'torch') if m in sys.modules])"
            )
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)  # fmt: skip
            assert "HEAVY []" in proc.stdout and "read0001" in proc.stdout and "EXIT 0" in proc.stdout, proc.stderr
    finally:
        pg_server.drop_database(database)
