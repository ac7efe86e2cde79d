import os
import signal
import subprocess
import sys
from dataclasses import dataclass

import pgserver
import pytest

# Never reach for a network or a WandB login in tests.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "disabled"
os.environ["WANDB_SILENT"] = "true"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

# A suite started in the background (`nohup`, `cmd &` in a script, some CI runners) inherits SIGINT ignored, and
# so would every command it starts: their Ctrl-C would do nothing and the tests of Ctrl-C would time out.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Each test runs in its own working directory with its own store."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GRPO_LAB_DB", str(tmp_path / "grpo_lab.db"))
    monkeypatch.setenv("GRPO_LAB_SUITES", str(tmp_path / "suites"))  # never the user's own imported suites
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    return tmp_path


def grpo_lab(*args: str, check: bool = False, timeout: int = 600, env: dict | None = None, cwd=None):
    """Run the real `grpo-lab` command in a subprocess; ``env`` values of None unset a variable."""
    proc = subprocess.run(
        [sys.executable, "-c", "from grpo_lab.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None},  # None unsets
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"grpo-lab {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def cli():
    return grpo_lab


QUICK_RUN = ["--model_name", "tiny-arith", "--n_samples", "32", "--batch_size", "16", "--num_generations", "4",
             "--learning_rate", "5e-5", "--eval_samples", "20", "--wandb", "disabled", "--max_steps", "2"]  # fmt: skip


@pytest.fixture(scope="module")
def recorded_store(tmp_path_factory):
    """A store holding one real finished run (tiny model, 2 steps), made once per test module."""
    folder = tmp_path_factory.mktemp("store")
    db = folder / "grpo_lab.db"
    # run outside any git tree: what the run records of its code does not depend on the checkout's state
    proc = grpo_lab("run", *QUICK_RUN, "--hypothesis", "a recorded run", "--exp_name", "recorded",
                    "--output_dir", str(folder / "out"), env={"GRPO_LAB_DB": str(db)}, cwd=folder)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    import sqlite3

    run_id = sqlite3.connect(db).execute("SELECT id FROM run").fetchone()[0]
    return db, run_id


# --- the two databases a store runs on ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server started for this test session (pgserver.py), stopped and removed at the end.
    Without one, the PostgreSQL half is skipped with the reason, unless GRPO_LAB_REQUIRE_POSTGRES=1 (CI) makes
    that an error."""
    reason = pgserver.unavailable()
    if reason:
        if os.environ.get("GRPO_LAB_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"GRPO_LAB_REQUIRE_POSTGRES=1 but no PostgreSQL server can start: {reason}")
        pytest.skip(f"PostgreSQL half skipped: {reason}")
    server = pgserver.Server().start()
    yield server
    server.stop()


class Backend:
    """One empty store location on one database: ``db`` is what --db takes; ``sql`` reads it back."""

    def __init__(self, name: str, db: str, path=None):
        self.name, self.db, self.path = name, db, path
        self._engine = None

    def engine(self):
        from sqlalchemy import create_engine

        from grpo_lab.store.location import locate

        if self._engine is None:
            location = locate(self.db)
            self._engine = create_engine(location.url or f"sqlite:///{location.path}")
        return self._engine

    def sql(self, statement: str, **params):
        """Rows of a query, through SQLAlchemy on either database (tests check what the store holds)."""
        from sqlalchemy import text

        with self.engine().connect() as conn:
            return [tuple(r) for r in conn.execute(text(statement), params)]

    def execute(self, statement: str) -> None:
        """Change the database behind the store's back (committed)."""
        with self.engine().begin() as conn:
            conn.exec_driver_sql(statement)

    def close(self):
        if self._engine is not None:
            self._engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path):
    """An empty store location on SQLite (a file) and on PostgreSQL (a fresh database on the session's server)."""
    if request.param == "sqlite":
        b = Backend("sqlite", str(tmp_path / "store.db"), tmp_path / "store.db")
        yield b
        b.close()
        return
    server = request.getfixturevalue("pg_server")
    name = server.create_database()
    b = Backend("postgresql", server.url(name))
    yield b
    b.close()
    server.drop_database(name)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def call(*args: str) -> Result:
    """Run `grpo-lab ARGS` in this process (fast: no interpreter start, libraries already imported), as main()
    runs it: its exit code, stdout and stderr. An exception that escapes main() is a failure of the test."""
    import contextlib
    import io
    import signal

    from grpo_lab.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv, sigterm, sigint = sys.argv, signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    sys.argv = ["grpo-lab", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code
    finally:
        sys.argv = argv
        signal.signal(signal.SIGTERM, sigterm)
        signal.signal(signal.SIGINT, sigint)
    return Result(code if isinstance(code, int) else 1, out.getvalue(), err.getvalue())


def sql_rows(db, sql, *args):
    """The rows of a query on a SQLite store, on a connection closed at once (it waits up to 30 s for a writer)."""
    import sqlite3

    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()
