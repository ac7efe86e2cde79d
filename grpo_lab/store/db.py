"""The run store: SQLModel tables over SQLite (or any SQLAlchemy URL). The only module that speaks SQL.

Schema changes are an ordered list of small migration functions, each applied once in its own
transaction and recorded by name in ``_migrations``. Opening a store checks it before touching it:
a file that is not a grpo-lab store, or one written by a newer grpo-lab (a migration this version
does not know), is refused and left byte-for-byte as it was.

SQLite stores run in WAL mode with a busy timeout while they are written, so several ``grpo-lab run``
processes can write to one store at once; the last writer to close leaves the file in rollback-journal mode,
readable by anyone who may read it. A PostgreSQL store (``postgresql://``, driver psycopg 3) takes a
transaction-scoped advisory lock for each migration, so concurrent first opens migrate once. Errors a user can
act on (a damaged, full, locked, unreachable or read-only store) become one-line StoreErrors.
"""

from __future__ import annotations

import json
import math
import socket
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, event, exc, insert, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool
from sqlmodel import Field, Session, SQLModel, create_engine, select

from .. import metrics as metric_names
from ..errors import GrpoLabError
from ..provenance import without_password
from . import pg_read, query, sqlite_read
from .location import Location, StoreError, locate
from .sqlite_read import KNOWN_MIGRATIONS, check_known, crash_values, pid_alive, presumed_dead

NOTE_KINDS = ("result", "learning", "comment")
HEARTBEAT_SECONDS = 30


class RunNotFound(GrpoLabError):
    pass


def now() -> datetime:
    return datetime.now(timezone.utc).astimezone()


def iso(t: datetime | None) -> str | None:
    return t.isoformat(timespec="seconds") if t else None


# --- tables (the latest schema; migrations below build it step by step) ---------------------------------------


class Run(SQLModel, table=True):
    __tablename__ = "run"
    id: str = Field(primary_key=True)  # the WandB run ID
    kind: str = "train"  # train | eval (an evaluation-only entry)
    exp_name: str = ""
    status: str = "running"
    hypothesis: str | None = None
    expected: str | None = None
    criteria: str | None = None
    preset: str | None = None
    tags: str = "[]"  # JSON list
    command: str = ""  # as typed, shell-quoted, secrets redacted
    resolved_command: str = ""  # every flag, defaults included
    config: str = "{}"  # JSON: the fully resolved RunConfig
    started_at: str = ""  # ISO 8601 with UTC offset
    finished_at: str | None = None
    duration_s: float | None = None
    train_seconds: float | None = None
    host: str = ""
    pid: int | None = None
    heartbeat_at: str | None = None
    versions: str = "{}"  # JSON: python, torch, transformers, trl, grpo-lab
    environment: str = "{}"  # JSON: relevant environment variables, secrets redacted
    git_commit: str | None = None
    git_dirty: bool | None = None
    model_name: str = ""
    model_path: str | None = None
    model_checksum: str | None = None
    output_dir: str | None = None
    wandb_mode: str | None = None
    wandb_project: str | None = None
    wandb_entity: str | None = None
    wandb_url: str | None = None
    wandb_dir: str | None = None  # its local WandB folders, one per line (a resumed run adds one per stretch)
    error: str | None = None
    summary: str = "{}"  # JSON: the metrics when the run ended (m004 onwards the metric table holds them)
    verdict: str | None = None  # confirmed | rejected | unchecked (criteria.py), set when the run ends
    verdict_detail: str | None = None  # the values that decided it
    suites_disjoint: bool = True  # False for runs recorded before suites were cut out of training sets (m004)
    sweep_id: str | None = None  # the sweep this run belongs to (m005)
    arm: str | None = None  # its arm in that sweep
    superseded: bool = False  # a later attempt of the same sweep arm and seed replaced it (kept, never deleted)
    task: str | None = None  # JSON: the task and the rewards' code (name, version, source file, SHA-256) (m008)
    rerun_of: str | None = None  # the run this one ran again from its record (grpo-lab rerun; m007)
    code_diff: str | None = None  # a dirty tree's uncommitted changes (git diff HEAD), when small enough to keep
    code_diff_bytes: int | None = None  # that diff's size, kept or not (None: clean, or recorded before m007)
    suites: str | None = None  # JSON: each suite evaluated: name, source, kind, sha256, rows, distinct problems (m009)


class Sweep(SQLModel, table=True):
    """A grid of runs recorded as one experiment, before any of them runs (m005)."""

    __tablename__ = "sweep"
    id: str = Field(primary_key=True)
    name: str = Field(index=True)
    hypothesis: str = ""
    baseline: str | None = None  # the baseline arm's name
    metric: str | None = None  # what its arms are compared on
    spec: str = "{}"  # JSON: the whole sweep (sweep.SweepSpec.to_dict)
    digest: str = ""  # SHA-256 of the spec: the same spec again resumes this sweep
    source: str = ""  # the file it came from, or "inline"
    command: str = ""  # as typed
    created_at: str = ""
    underpowered: bool = False  # started with --underpowered: some arm's seeds cannot reach its significance (m008)
    power: str | None = None  # JSON: the power plan printed before the runs (sweep.PowerPlan) (m008)


class Step(SQLModel, table=True):
    __tablename__ = "step"
    run_id: str = Field(primary_key=True, foreign_key="run.id")
    step: int = Field(primary_key=True)
    metrics: str = "{}"  # JSON: everything TRL logged at this step


class Sample(SQLModel, table=True):
    __tablename__ = "sample"
    run_id: str = Field(primary_key=True, foreign_key="run.id")
    step: int = Field(primary_key=True)
    idx: int = Field(primary_key=True)
    prompt: str = ""
    completion: str = ""
    reward: float = 0.0
    advantage: float = 0.0
    extracted: str | None = None  # the answer the completion gives, by its task's rule (m008)


class Result(SQLModel, table=True):
    __tablename__ = "result"
    run_id: str = Field(primary_key=True, foreign_key="run.id")
    stage: str = Field(primary_key=True)  # before | after
    split: str = Field(primary_key=True)  # train | held_out | a suite name
    dimension: str = Field(primary_key=True)  # overall | operation | task_type | difficulty
    grp: str = Field(primary_key=True)  # the group ("" for overall)
    correct: int = 0
    total: int = 0


class Metric(SQLModel, table=True):
    """One headline number of a run (metrics.py names it), as compare filters and sorts on it (m004)."""

    __tablename__ = "metric"
    run_id: str = Field(primary_key=True, foreign_key="run.id")
    name: str = Field(primary_key=True)
    value: float = 0.0


class Prediction(SQLModel, table=True):
    """What the model said for one evaluated prompt (added by m002_predictions)."""

    __tablename__ = "prediction"
    run_id: str = Field(primary_key=True, foreign_key="run.id")
    stage: str = Field(primary_key=True)
    split: str = Field(primary_key=True)
    idx: int = Field(primary_key=True)
    prompt: str = ""
    answer: str = ""
    completion: str = ""
    extracted: str | None = None
    correct: bool = False
    task_type: str = ""
    operation: str = ""
    difficulty: str = ""


class Note(SQLModel, table=True):
    __tablename__ = "note"
    run_id: str = Field(primary_key=True, foreign_key="run.id")
    seq: int = Field(primary_key=True)
    kind: str = "comment"
    text: str = ""
    created_at: str = ""


# --- migrations --------------------------------------------------------------------------------------------------

MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = []


def migration(func: Callable[[Connection], None]) -> Callable[[Connection], None]:
    if any(name == func.__name__ for name, _ in MIGRATIONS):
        raise RuntimeError(f"duplicate migration {func.__name__}")
    MIGRATIONS.append((func.__name__, func))
    return func


@migration
def m001_initial(conn: Connection) -> None:
    conn.execute(
        text("""
        CREATE TABLE run (
            id VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, exp_name VARCHAR NOT NULL, status VARCHAR NOT NULL,
            hypothesis VARCHAR, expected VARCHAR, criteria VARCHAR, preset VARCHAR, tags VARCHAR NOT NULL,
            command VARCHAR NOT NULL, resolved_command VARCHAR NOT NULL, config VARCHAR NOT NULL,
            started_at VARCHAR NOT NULL, finished_at VARCHAR, duration_s FLOAT, train_seconds FLOAT,
            host VARCHAR NOT NULL, pid INTEGER, heartbeat_at VARCHAR, versions VARCHAR NOT NULL,
            environment VARCHAR NOT NULL, git_commit VARCHAR, git_dirty BOOLEAN, model_name VARCHAR NOT NULL,
            model_path VARCHAR, model_checksum VARCHAR, output_dir VARCHAR, wandb_mode VARCHAR,
            wandb_project VARCHAR, wandb_entity VARCHAR, wandb_url VARCHAR, wandb_dir VARCHAR, error VARCHAR,
            summary VARCHAR NOT NULL
        )""")
    )
    conn.execute(
        text("""
        CREATE TABLE step (
            run_id VARCHAR NOT NULL REFERENCES run (id), step INTEGER NOT NULL, metrics VARCHAR NOT NULL,
            PRIMARY KEY (run_id, step)
        )""")
    )
    conn.execute(
        text("""
        CREATE TABLE sample (
            run_id VARCHAR NOT NULL REFERENCES run (id), step INTEGER NOT NULL, idx INTEGER NOT NULL,
            prompt VARCHAR NOT NULL, completion VARCHAR NOT NULL, reward FLOAT NOT NULL, advantage FLOAT NOT NULL,
            PRIMARY KEY (run_id, step, idx)
        )""")
    )
    conn.execute(
        text("""
        CREATE TABLE result (
            run_id VARCHAR NOT NULL REFERENCES run (id), stage VARCHAR NOT NULL, split VARCHAR NOT NULL,
            dimension VARCHAR NOT NULL, grp VARCHAR NOT NULL, correct INTEGER NOT NULL, total INTEGER NOT NULL,
            PRIMARY KEY (run_id, stage, split, dimension, grp)
        )""")
    )
    conn.execute(
        text("""
        CREATE TABLE note (
            run_id VARCHAR NOT NULL REFERENCES run (id), seq INTEGER NOT NULL, kind VARCHAR NOT NULL,
            text VARCHAR NOT NULL, created_at VARCHAR NOT NULL,
            PRIMARY KEY (run_id, seq)
        )""")
    )
    conn.execute(text("CREATE INDEX ix_run_started_at ON run (started_at)"))
    conn.execute(text("CREATE INDEX ix_run_status ON run (status)"))


@migration
def m002_predictions(conn: Connection) -> None:
    """Keep every evaluated prompt's completion and extracted answer (the evaluation suites)."""
    conn.execute(
        text("""
        CREATE TABLE prediction (
            run_id VARCHAR NOT NULL REFERENCES run (id), stage VARCHAR NOT NULL, split VARCHAR NOT NULL,
            idx INTEGER NOT NULL, prompt VARCHAR NOT NULL, answer VARCHAR NOT NULL, completion VARCHAR NOT NULL,
            extracted VARCHAR, correct BOOLEAN NOT NULL, task_type VARCHAR NOT NULL, operation VARCHAR NOT NULL,
            difficulty VARCHAR NOT NULL,
            PRIMARY KEY (run_id, stage, split, idx)
        )""")
    )
    conn.execute(text("CREATE INDEX ix_run_kind ON run (kind)"))


@migration
def m003_held_out_ops(conn: Connection) -> None:
    """Per-operation suite accuracy as one summary entry (superseded by m004's metric table; kept so that
    stores upgrade step by step exactly as they did). Its name and key are historical: before m004 the
    summary used "held_out" for the suite; since m004 the word only ever means a run's own held-out split."""
    for run_id, raw in conn.execute(text("SELECT id, summary FROM run")).all():
        summary = json.loads(raw)
        prefix = f"{summary.get('suite')}_acc_after:operation="
        summary["held_out_ops"] = {k[len(prefix) :]: v for k, v in summary.items() if k.startswith(prefix)}
        conn.execute(text("UPDATE run SET summary = :s WHERE id = :i"), {"s": json.dumps(summary), "i": run_id})


# Curve values the summary JSON kept under other names before m004.
_OLD_CURVE_KEYS = {"final_reward": "reward"}


@migration
def m004_metrics(conn: Connection) -> None:
    """Typed metric rows named once (metrics.py), verdict columns, and the mark on older runs.

    Every run recorded before this step was trained on sets that could contain suite problems, so it
    gets ``suites_disjoint = false`` and, where its evaluated prompts were stored, the number of its
    training problems each suite holds (``SUITE_overlap``), counted from the prediction table. Its
    summary JSON is kept as it was; its verdict is ``unchecked`` (its criteria were free text)."""
    conn.execute(
        text("""
        CREATE TABLE metric (
            run_id VARCHAR NOT NULL REFERENCES run (id), name VARCHAR NOT NULL, value FLOAT NOT NULL,
            PRIMARY KEY (run_id, name)
        )""")
    )
    conn.execute(text("CREATE INDEX ix_metric_name_value ON metric (name, value)"))
    conn.execute(text("ALTER TABLE run ADD COLUMN verdict VARCHAR"))
    conn.execute(text("ALTER TABLE run ADD COLUMN verdict_detail VARCHAR"))
    conn.execute(text("ALTER TABLE run ADD COLUMN suites_disjoint BOOLEAN NOT NULL DEFAULT TRUE"))
    conn.execute(text("UPDATE run SET suites_disjoint = FALSE"))
    conn.execute(
        text("UPDATE run SET verdict = 'unchecked', verdict_detail = :d"),
        {"d": "recorded before grpo-lab computed verdicts"},
    )
    results: dict[str, list[tuple]] = {}
    for row in conn.execute(text("SELECT run_id, stage, split, dimension, grp, correct, total FROM result")):
        results.setdefault(row[0], []).append(tuple(row[1:]))
    overlaps: dict[str, dict[str, int]] = {}
    counted = conn.execute(
        text("""
        SELECT s.run_id, s.split, COUNT(DISTINCT s.prompt) FROM prediction s
        JOIN prediction t ON t.run_id = s.run_id AND t.prompt = s.prompt AND t.split = 'train'
        WHERE s.split NOT IN ('train', 'held_out') GROUP BY s.run_id, s.split""")
    )
    for run_id, suite, count in counted:
        overlaps.setdefault(run_id, {})[suite] = count
    with_train = {r[0] for r in conn.execute(text("SELECT DISTINCT run_id FROM prediction WHERE split = 'train'"))}
    suites = {(r[0], r[1]) for r in conn.execute(text(
        "SELECT DISTINCT run_id, split FROM result WHERE split NOT IN ('train', 'held_out')"))}  # fmt: skip
    rows = []
    for run_id, raw in conn.execute(text("SELECT id, summary FROM run")).all():
        summary = json.loads(raw)
        counts = dict(overlaps.get(run_id, {}))
        if run_id in with_train:  # a suite none of whose prompts was trained on counts 0
            counts.update({suite: counts.get(suite, 0) for rid, suite in suites if rid == run_id})
        values = metric_names.compute([], results.get(run_id, []), counts)
        for name in [*metric_names.CURVE, *metric_names.CURVE_EXTRA]:
            value = summary.get(_OLD_CURVE_KEYS.get(name, name))
            if isinstance(value, int | float):
                values[name] = value
        rows += [{"run_id": run_id, "name": k, "value": v} for k, v in values.items()]
    if rows:
        conn.execute(insert(Metric), rows)


@migration
def m005_sweeps(conn: Connection) -> None:
    """Sweeps: their own table, and each run's sweep, arm and whether a later attempt replaced it."""
    conn.execute(
        text("""
        CREATE TABLE sweep (
            id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, hypothesis VARCHAR NOT NULL, baseline VARCHAR,
            metric VARCHAR, spec VARCHAR NOT NULL, digest VARCHAR NOT NULL, source VARCHAR NOT NULL,
            command VARCHAR NOT NULL, created_at VARCHAR NOT NULL
        )""")
    )
    conn.execute(text("CREATE INDEX ix_sweep_name ON sweep (name)"))
    conn.execute(text("ALTER TABLE run ADD COLUMN sweep_id VARCHAR REFERENCES sweep (id)"))
    conn.execute(text("ALTER TABLE run ADD COLUMN arm VARCHAR"))
    conn.execute(text("ALTER TABLE run ADD COLUMN superseded BOOLEAN NOT NULL DEFAULT FALSE"))
    conn.execute(text("CREATE INDEX ix_run_sweep ON run (sweep_id)"))


@migration
def m007_rerun(conn: Connection) -> None:
    """A run's link to the run it reran, and a dirty tree's diff of the code it ran (its size, kept or not)."""
    conn.execute(text("ALTER TABLE run ADD COLUMN rerun_of VARCHAR"))
    conn.execute(text("ALTER TABLE run ADD COLUMN code_diff VARCHAR"))
    conn.execute(text("ALTER TABLE run ADD COLUMN code_diff_bytes INTEGER"))
    conn.execute(text("CREATE INDEX ix_run_rerun_of ON run (rerun_of)"))


@migration
def m008_tasks_and_knobs(conn: Connection) -> None:
    """GRPO settings as flags, tasks, the answer of each sample, and a sweep's power plan.

    Before this step grpo-lab gave TRL fixed values for the settings that are flags since (loss_type grpo,
    scale_rewards group, warmup 0.1, weight decay 0.01, max_grad_norm 1.0) and left the rest at TRL's defaults;
    every run and queued run recorded before gets them in its configuration, not guessed but as they were, with
    an ``upgrade_note`` saying so (and which TRL the run used). Its task is its built-in dataset type, its held-out
    suites the v1 ones (--reserve), and it had no --trl fields. Samples get the column for the answer each gives;
    runs get the column recording their task's and rewards' code; sweeps the power plan printed before them and
    whether they were started --underpowered."""
    conn.execute(text("ALTER TABLE run ADD COLUMN task VARCHAR"))
    conn.execute(text("ALTER TABLE sample ADD COLUMN extracted VARCHAR"))
    conn.execute(text("ALTER TABLE sweep ADD COLUMN underpowered BOOLEAN NOT NULL DEFAULT FALSE"))
    conn.execute(text("ALTER TABLE sweep ADD COLUMN power VARCHAR"))
    filled = {
        "loss_type": "grpo",
        "scale_rewards": "group",
        "importance_sampling_level": "token",
        "epsilon": 0.2,
        "epsilon_high": None,
        "num_iterations": 1,
        "mask_truncated_completions": False,
        "top_p": 1.0,
        "top_k": 0,
        "min_p": None,
        "repetition_penalty": 1.0,
        "lr_scheduler_type": "linear",
        "warmup": 0.1,
        "weight_decay": 0.01,
        "max_grad_norm": 1.0,
        "task": None,
        "trl": {},
        "reserve": ["arith-v1", "mixed-v1"],
    }  # fmt: skip  (frozen here: config.SEED_GRPO may change later)
    updates = []
    for run_id, raw_config, raw_versions in conn.execute(text("SELECT id, config, versions FROM run")).all():
        config = json.loads(raw_config)
        missing = [k for k in filled if k not in config]
        if not missing or not config:
            continue
        trl = json.loads(raw_versions or "{}").get("trl", "unknown")
        config.update({k: filled[k] for k in missing})
        config["upgrade_note"] = (
            f"m008: {', '.join(missing)} were not flags when this run was recorded; these are the values grpo-lab "
            f"gave TRL then (fixed, or TRL {trl}'s defaults)"
        )
        updates.append({"c": json.dumps(config), "i": run_id})
    if updates:
        conn.execute(text("UPDATE run SET config = :c WHERE id = :i"), updates)


@migration
def m009_suite_records(conn: Connection) -> None:
    """Each run keeps the suites it was evaluated on: name, where it came from, the SHA-256 of its problems, its
    rows and its distinct problems (a set as researchers keep it may repeat prompts). Runs recorded before keep
    none: what they read from a user's file then is not known now."""
    conn.execute(text("ALTER TABLE run ADD COLUMN suites VARCHAR"))


if tuple(name for name, _ in MIGRATIONS) != KNOWN_MIGRATIONS:  # the light reader must know every step
    raise RuntimeError("sqlite_read.KNOWN_MIGRATIONS is out of step with the migrations in db.py")


# --- opening ----------------------------------------------------------------------------------------------------


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {sqlite_read.TIMEOUT_S * 1000}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _read_pragmas(dbapi_conn, _record) -> None:
    dbapi_conn.execute(f"PRAGMA busy_timeout = {sqlite_read.TIMEOUT_S * 1000}")


def _explain(location: Location, error: BaseException) -> StoreError | None:
    """A one-line StoreError for a database error the user can act on; None for anything else (a bug)."""
    if location.path is not None:
        return sqlite_read.explain(error, location.path) if isinstance(error, sqlite_read.sqlite3.Error) else None
    return pg_read.explain(error, location)


def _one_line_errors(location: Location):
    def handle_error(context) -> None:
        if isinstance(context.sqlalchemy_exception, exc.IntegrityError):
            return  # a key clash is the caller's business
        replacement = _explain(location, context.original_exception)
        if replacement is not None:
            raise replacement from None

    return handle_error


def _engine(location: Location, write: bool) -> Engine:
    if location.path is not None:
        connect = (lambda: sqlite_read.connect_write(location.path)) if write else _reader(location.path)
        engine = create_engine("sqlite://", creator=connect, poolclass=QueuePool)
        event.listen(engine, "connect", _sqlite_pragmas if write else _read_pragmas)
    else:
        try:
            options = {"postgresql_readonly": True} if not write and location.backend == "postgresql" else {}
            connect_args = {"connect_timeout": pg_read.CONNECT_TIMEOUT_S} if location.backend == "postgresql" else {}
            engine = create_engine(location.url, pool_pre_ping=True, execution_options=options,
                                   connect_args=connect_args)  # fmt: skip
        except exc.NoSuchModuleError:
            raise StoreError(f"{location.source}: no database driver for {location}; grpo-lab stores are SQLite "
                             "files or postgresql://USER@HOST/DB URLs") from None  # fmt: skip
        except ModuleNotFoundError as missing:
            hint = " (pip install 'grpo-lab[postgres]')" if location.backend == "postgresql" else ""
            raise StoreError(f"{location.source}: {location} needs the Python package {missing.name}{hint}") from None
        except exc.ArgumentError as bad:
            raise StoreError(f"{location.source}: {location} is not a usable database URL ({bad})") from None
    event.listen(engine, "handle_error", _one_line_errors(location))
    return engine


def _reader(path):
    return lambda: sqlite_read.connect_read(path)


def pending(engine: Engine) -> list[str]:
    """Names of the migrations not yet applied (read-only)."""
    with engine.connect() as conn:
        if "_migrations" not in _tables(conn):
            return [name for name, _ in MIGRATIONS]
        applied = {r[0] for r in conn.execute(text("SELECT name FROM _migrations"))}
    return [name for name, _ in MIGRATIONS if name not in applied]


def _tables(conn: Connection) -> set[str]:
    from sqlalchemy import inspect

    return set(inspect(conn).get_table_names())


_PG_MIGRATION_LOCK = 0x6772706F  # "grpo": the advisory lock key every grpo-lab migration takes on PostgreSQL


def _lock(conn: Connection) -> None:
    """Make this transaction the only one migrating: the others wait here, then see the work done."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})


def migrate(engine: Engine, where: object = None) -> list[str]:
    """Apply every pending migration, each in its own transaction. Returns the names applied."""
    with engine.begin() as conn:
        _lock(conn)
        tables = _tables(conn)
        if "_migrations" not in tables and tables:
            raise StoreError(f"{where or engine.url} holds tables but is not a grpo-lab store; point --db elsewhere")
        conn.execute(
            text("CREATE TABLE IF NOT EXISTS _migrations (name VARCHAR PRIMARY KEY, applied_at VARCHAR NOT NULL)")
        )
    done = []
    for name, func in MIGRATIONS:
        with engine.begin() as conn:
            _lock(conn)
            if conn.execute(text("SELECT 1 FROM _migrations WHERE name = :n"), {"n": name}).first():
                continue
            func(conn)
            conn.execute(text("INSERT INTO _migrations VALUES (:n, :t)"), {"n": name, "t": iso(now())})
            done.append(name)
    return done


# --- the store ----------------------------------------------------------------------------------------------------


@dataclass
class RunView:
    """A run with its JSON columns decoded and its metrics, as the commands show it."""

    run: Run
    config: dict[str, Any]
    tags: list[str]
    versions: dict[str, str]
    environment: dict[str, str]
    metrics: dict[str, float]

    @classmethod
    def of(cls, run: Run, metrics: dict[str, float]) -> RunView:
        # a password an older grpo-lab recorded in a URL is never shown (the row is detached: nothing is written)
        run.command, run.resolved_command = without_password(run.command), without_password(run.resolved_command)
        run.environment = without_password(run.environment)
        return cls(
            run, json.loads(run.config), json.loads(run.tags), json.loads(run.versions),
            json.loads(run.environment), metrics,
        )  # fmt: skip


class Store:
    """A store opened for recording (the default: created when missing, upgraded, checked) or for reading
    (``readonly=True``: it must exist; it is upgraded and its crashed runs marked only when this user may write
    it, else ``notices`` says what was left undone)."""

    def __init__(self, db: str | Location | None = None, *, readonly: bool = False, create: bool = True,
                 reap: bool = False):  # fmt: skip
        self.location = db if isinstance(db, Location) else locate(db)
        self.readonly = readonly
        self.notices: list[str] = []
        path = self.location.path
        if path is not None:
            self._check_file(path, create)
        self.engine = _engine(self.location, write=not readonly)
        if path is not None:
            if not readonly:  # leave the file readable by anyone who may read it when this store goes away
                self._settle = weakref.finalize(self, _close_and_settle, self.engine, path)
                migrate(self.engine, path)
        elif readonly and self.location.backend == "postgresql":  # checked, never created, migrated or written
            self.notices += pg_read.prepare(self.location)
        else:
            self._check_server(readonly)
        if reap and not readonly:
            self.reap()

    @property
    def url(self) -> str:
        """What opens this same store again (``Store(store.url)``, in a worker, say): the file's path, or the URL
        with its password. Never print it: ``str(store.location)`` is the form for messages."""
        return str(self.location.path) if self.location.path is not None else self.location.url

    def _check_file(self, path, create: bool) -> None:
        if not path.exists():
            if self.readonly or not create:
                raise StoreError(
                    f"no grpo-lab store at {path} (from {self.location.source}); check the path, or "
                    "record a run there first with grpo-lab run"
                )
            if not path.parent.is_dir():
                raise StoreError(f"the folder of the store {path} does not exist; create it or choose another --db")
            if not sqlite_read.may_write(path):
                raise StoreError(f"you may not create files in {path.parent}; choose another --db")
            return
        if self.readonly:  # refuses foreign and newer files; upgrades or marks crashes that are due, where allowed
            self.notices += sqlite_read.prepare(path)
            return
        sqlite_read.applied_migrations(path)  # refuses foreign and newer files before anything opens them to write
        if not sqlite_read.may_write(path):
            raise StoreError(f"{path} is read-only to you (or its folder is); choose a store you may write with --db")
        sqlite_read.check_integrity(path)

    def _check_server(self, readonly: bool) -> None:
        with self.engine.connect() as conn:
            if "_migrations" in _tables(conn):
                check_known({r[0] for r in conn.execute(text("SELECT name FROM _migrations"))}, str(self.location))
        if readonly and not pending(self.engine):
            self.notices += self._reap_if_allowed()
            return
        migrate(self.engine, self.location)
        if readonly:
            self.notices += self._reap_if_allowed()

    def _reap_if_allowed(self) -> list[str]:
        try:
            self.reap()
        except StoreError as refused:
            return [f"crashed runs were not marked: {refused}"]
        return []

    def close(self) -> None:
        settle = getattr(self, "_settle", None)
        if settle is not None:
            settle()  # dispose, then leave the file in rollback-journal mode if no one else has it open
        else:
            self.engine.dispose()

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # -- writing --
    def create_run(self, run: Run) -> None:
        with self.session() as s:
            s.add(run)
            s.commit()

    def update_run(self, run_id: str, **values: Any) -> None:
        with self.session() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise RunNotFound(f"no run {run_id}")
            for key, value in values.items():
                setattr(run, key, value)
            s.add(run)
            s.commit()

    def reopen_run(self, run_id: str, host: str, pid: int, **values: Any) -> None:
        """A resumed run is running again, in the process ``pid`` on ``host`` (``values``: its other columns that
        the resume changes, e.g. the WandB folders)."""
        self.update_run(run_id, status="running", error=None, finished_at=None, duration_s=None, host=host, pid=pid,
                        heartbeat_at=iso(now()), **values)  # fmt: skip

    def rewind(self, run_id: str, step: int) -> None:
        """Forget what a run recorded after training step ``step`` (the steps and samples past its checkpoint, and
        any evaluation after training), so that a resumed run records them again without duplicates or gaps."""
        with self.engine.begin() as conn:
            for table in (Step, Sample):
                conn.execute(delete(table).where(table.run_id == run_id, table.step > step))
            for table in (Result, Prediction):
                conn.execute(delete(table).where(table.run_id == run_id, table.stage == "after"))

    def heartbeat(self, run_id: str, at: str | None = None) -> None:
        """The run is alive (``at``: when it said so, for a record kept in its spool)."""
        with self.engine.begin() as conn:
            conn.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=at or iso(now())))

    def revive(self, run_id: str, host: str, pid: int | None) -> None:
        """A run marked crashed while it could not reach the store (its heartbeat went stale) is running again:
        it is the same process (``host``, ``pid``), which reached the store again."""
        with self.engine.begin() as conn:
            conn.execute(
                update(Run)
                .where(Run.id == run_id, Run.status == "crashed", Run.host == host, Run.pid == pid)
                .values(status="running", error=None, finished_at=None, duration_s=None, heartbeat_at=iso(now()))
            )

    def record(
        self,
        run_id: str,
        steps: Iterable[tuple[int, dict[str, float]]] = (),
        samples: Iterable[tuple] = (),
        results: Iterable[tuple[str, str, str, str, int, int]] = (),
        predictions: Iterable[tuple[str, str, int, Any]] = (),
        at: str | None = None,
        replay: bool = False,
    ) -> None:
        """Add steps, samples and results for a run in one transaction, as bulk inserts. ``replay``: records kept
        in a spool, made ``at`` that time; those already in the store are left as they are."""
        step_rows = [{"run_id": run_id, "step": st, "metrics": json.dumps(m)} for st, m in steps]
        sample_rows = [  # (step, idx, prompt, completion, reward, advantage[, extracted answer])
            {"run_id": run_id, "step": st, "idx": i, "prompt": p, "completion": c, "reward": r, "advantage": a,
             "extracted": rest[0] if rest else None}
            for st, i, p, c, r, a, *rest in samples
        ]  # fmt: skip
        result_rows = [
            {"run_id": run_id, "stage": st, "split": sp, "dimension": d, "grp": g, "correct": c, "total": t}
            for st, sp, d, g, c, t in results
        ]
        prediction_rows = [
            {"run_id": run_id, "stage": st, "split": sp, "idx": i, "prompt": p.prompt, "answer": p.answer,
             "completion": p.completion, "extracted": p.extracted, "correct": p.correct, "task_type": p.task_type,
             "operation": p.operation, "difficulty": p.difficulty}
            for st, sp, i, p in predictions
        ]  # fmt: skip
        tables = ((Step, step_rows), (Sample, sample_rows), (Result, result_rows), (Prediction, prediction_rows))
        with self.engine.begin() as conn:
            for table, rows in tables:
                if rows:
                    conn.execute(self._insert(table, replay), rows)
            conn.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=at or iso(now())))

    def _insert(self, table, replay: bool):
        """An INSERT; for a replay one that skips rows whose key is there already (on SQLite and PostgreSQL)."""
        if not replay:
            return insert(table)
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as upsert
        else:
            from sqlalchemy.dialects.sqlite import insert as upsert
        return upsert(table).on_conflict_do_nothing()

    def finish_run(
        self, run_id: str, status: str, error: str | None = None, metrics: dict[str, float] | None = None,
        at: str | None = None, **values: Any,
    ) -> None:  # fmt: skip
        """Record how a run ended (``at``: when, for an ending kept in a spool), with its metrics (replacing any it
        had), in one transaction."""
        if status not in query.STATUSES:
            raise ValueError(status)
        with self.session() as s:
            run = s.get(Run, run_id)
            finished = datetime.fromisoformat(at) if at else now()
            run.status, run.error, run.finished_at = status, error, iso(finished)
            run.duration_s = (finished - datetime.fromisoformat(run.started_at)).total_seconds()
            for key, value in values.items():
                setattr(run, key, value)
            if metrics is not None:
                run.summary = json.dumps(metrics)
                s.exec(delete(Metric).where(Metric.run_id == run_id))
                s.add_all(Metric(run_id=run_id, name=k, value=v) for k, v in metrics.items() if math.isfinite(v))
            s.add(run)
            s.commit()

    def load_runs(self, records: Iterable[tuple[Run, list, list, dict[str, float]]], batch: int = 500) -> int:
        """Insert complete runs in bulk, ``batch`` runs per transaction: each record is (run row, curve as
        (step, metrics) pairs, results as (stage, split, dimension, group, correct, total), metrics). For
        benchmarks and for copying runs between stores; returns how many runs were written."""
        count, chunk = 0, []
        for record in records:
            chunk.append(record)
            if len(chunk) == batch:
                count += self._load(chunk)
                chunk = []
        return count + (self._load(chunk) if chunk else 0)

    def _load(self, chunk) -> int:
        runs, steps, results, values = [], [], [], []
        for run, curve, rows, metrics in chunk:
            runs.append(run.model_dump())
            steps += [{"run_id": run.id, "step": st, "metrics": json.dumps(m)} for st, m in curve]
            results += [{"run_id": run.id, "stage": st, "split": sp, "dimension": d, "grp": g, "correct": c,
                         "total": t} for st, sp, d, g, c, t in rows]  # fmt: skip
            values += [{"run_id": run.id, "name": k, "value": v} for k, v in metrics.items()]
        with self.engine.begin() as conn:
            for table, rows_ in ((Run, runs), (Step, steps), (Result, results), (Metric, values)):
                if rows_:
                    conn.execute(insert(table), rows_)
        return len(chunk)

    def add_note(self, run_id: str, text_: str, kind: str = "comment", at: str | None = None,
                 once: bool = False) -> Note:  # fmt: skip
        """A note on a run (``at``: when it was written, for a note kept in a spool; ``once``: unless the same
        note of that time is there already)."""
        if kind not in NOTE_KINDS:
            raise GrpoLabError(f"--kind {kind!r} is not one of: {', '.join(NOTE_KINDS)}")
        run = self.find_run(run_id).run
        with self.session() as s:
            if once and at:
                same = s.exec(select(Note).where(Note.run_id == run.id, Note.kind == kind, Note.text == text_,
                                                 Note.created_at == at)).first()  # fmt: skip
                if same is not None:
                    return same
            last = s.exec(select(Note.seq).where(Note.run_id == run.id).order_by(Note.seq.desc())).first()
            note = Note(run_id=run.id, seq=(last or 0) + 1, kind=kind, text=text_, created_at=at or iso(now()))
            s.add(note)
            s.commit()
        return note

    # -- reading --
    def find_run(self, prefix: str) -> RunView:
        """The run whose ID is ``prefix`` or uniquely starts with it."""
        with self.session() as s:
            exact = s.get(Run, prefix)
            if exact is not None:
                return RunView.of(exact, self.metrics(exact.id))
            matches = s.exec(select(Run).where(Run.id.startswith(prefix, autoescape=True)).limit(3)).all()
        if not matches:
            raise RunNotFound(f"no run with ID {prefix!r}; `grpo-lab runs` lists them")
        if len(matches) > 1:
            ids = ", ".join(m.id for m in matches)
            raise RunNotFound(f"run ID prefix {prefix!r} is ambiguous ({ids}...); give more characters")
        return RunView.of(matches[0], self.metrics(matches[0].id))

    def runs(self, limit: int | None = None, ids: Sequence[str] | None = None) -> list[RunView]:
        with self.session() as s:
            query = select(Run).order_by(Run.started_at.desc(), Run.id)
            if ids is not None:
                query = query.where(Run.id.in_(list(ids)))
            if limit:
                query = query.limit(limit)
            runs = s.exec(query).all()
            by_run: dict[str, dict[str, float]] = {r.id: {} for r in runs}
            wanted = select(Metric)
            if limit or ids is not None:
                wanted = wanted.where(Metric.run_id.in_(list(by_run)))
            for m in s.exec(wanted):
                if m.run_id in by_run:
                    by_run[m.run_id][m.name] = m.value
        return [RunView.of(r, by_run[r.id]) for r in runs]

    def metrics(self, run_id: str) -> dict[str, float]:
        with self.session() as s:
            return {m.name: m.value for m in s.exec(select(Metric).where(Metric.run_id == run_id))}

    def steps(self, run_id: str) -> list[tuple[int, dict[str, float]]]:
        with self.session() as s:
            rows = s.exec(select(Step).where(Step.run_id == run_id).order_by(Step.step)).all()
        return [(r.step, json.loads(r.metrics)) for r in rows]

    def samples(self, run_id: str) -> list[Sample]:
        with self.session() as s:
            return list(s.exec(select(Sample).where(Sample.run_id == run_id).order_by(Sample.step, Sample.idx)).all())

    def results(self, run_id: str) -> list[Result]:
        with self.session() as s:
            return list(s.exec(select(Result).where(Result.run_id == run_id)).all())

    def predictions(self, run_id: str, stage: str | None = None, split: str | None = None) -> list[Prediction]:
        with self.session() as s:
            query = select(Prediction).where(Prediction.run_id == run_id)
            if stage:
                query = query.where(Prediction.stage == stage)
            if split:
                query = query.where(Prediction.split == split)
            return list(s.exec(query.order_by(Prediction.stage, Prediction.split, Prediction.idx)).all())

    def notes(self, run_id: str) -> list[Note]:
        with self.session() as s:
            return list(s.exec(select(Note).where(Note.run_id == run_id).order_by(Note.seq)).all())

    # -- sweeps --
    def create_sweep(self, sweep: Sweep, runs: list[Run]) -> None:
        """The sweep and its queued runs, in one transaction: all of it is recorded, or none."""
        with self.session() as s:
            s.add(sweep)
            s.flush()  # the sweep's row first: its runs refer to it
            s.add_all(runs)
            s.commit()

    def queue_runs(self, runs: list[Run], supersede: list[str] = ()) -> None:
        """New attempts of a sweep's runs; the attempts they replace are kept, marked superseded."""
        with self.session() as s:
            for run_id in supersede:
                old = s.get(Run, run_id)
                old.superseded = True
                s.add(old)
            s.add_all(runs)
            s.commit()

    def start_queued(self, run: Run) -> None:
        """Claim a queued run for this process and write its full row (provenance, start time), atomically:
        two workers can never both start it."""
        with self.session() as s:
            claimed = s.execute(
                update(Run).where(Run.id == run.id, Run.status == "queued").values(status="running")
            ).rowcount  # fmt: skip
            if claimed != 1:
                s.rollback()
                current = s.get(Run, run.id)
                raise GrpoLabError(f"run {run.id} is {current.status if current else 'gone'}, not queued; "
                                   "another worker has it")  # fmt: skip
            s.merge(run)
            s.commit()

    def find_sweep(self, key: str) -> Sweep:
        """A sweep by ID, unique ID prefix, or name (the newest of that name)."""
        key = query.sweep_key(key)
        with self.session() as s:
            exact = s.get(Sweep, key)
            if exact is not None:
                return exact
            named = s.exec(select(Sweep).where(Sweep.name == key).order_by(Sweep.created_at.desc())).first()
            if named is not None:
                return named
            matches = s.exec(select(Sweep).where(Sweep.id.startswith(key, autoescape=True)).limit(2)).all()
        if len(matches) != 1:
            raise RunNotFound(f"no sweep {key!r}" + ("" if not matches else " (ambiguous prefix)")
                              + "; `grpo-lab sweep list` lists them")  # fmt: skip
        return matches[0]

    def find_sweep_by_digest(self, name: str, digest: str) -> Sweep | None:
        with self.session() as s:
            return s.exec(select(Sweep).where(Sweep.name == name, Sweep.digest == digest)).first()

    def sweeps(self) -> list[Sweep]:
        with self.session() as s:
            return list(s.exec(select(Sweep).order_by(Sweep.created_at.desc())).all())

    def sweep_runs(self, sweep_id: str, include_superseded: bool = False) -> list[Run]:
        with self.session() as s:
            query = select(Run).where(Run.sweep_id == sweep_id)
            if not include_superseded:
                query = query.where(Run.superseded == False)  # noqa: E712  (SQL, not Python)
            return list(s.exec(query.order_by(Run.started_at, Run.id)).all())

    # -- compare's and runs' rows, filtered and sorted in the database (see query.py) --
    def table_rows(self, conditions=(), ids=None, tag=None, last=None, order=None, limit=None,
                   names=None) -> list[dict]:  # fmt: skip
        with self.engine.connect() as conn:
            return query.table_rows(self.engine.dialect.name, lambda sql, p: conn.exec_driver_sql(sql, tuple(p)).all(),
                                    conditions, ids, tag, last, order, limit, names)  # fmt: skip

    def count_rows(self, conditions=(), ids=None, tag=None) -> int:
        with self.engine.connect() as conn:
            sql, params = query.count_query(self.engine.dialect.name, conditions, ids, tag)
            return conn.exec_driver_sql(sql, tuple(params)).scalar_one()

    def metric_names(self) -> list[str]:
        with self.engine.connect() as conn:
            return [r[0] for r in conn.exec_driver_sql(query.METRIC_NAMES)]

    def has_metric(self, name: str) -> bool:
        with self.session() as s:
            return s.exec(select(Metric.name).where(Metric.name == name).limit(1)).first() is not None

    def is_empty(self) -> bool:
        with self.session() as s:
            return s.exec(select(Run.id).limit(1)).first() is None

    def reap(self, host: str | None = None, alive: Callable[[int], bool] | None = None) -> list[str]:
        """Mark running runs whose process is gone as crashed: a dead pid on this host, or a stale heartbeat."""
        host = host or socket.gethostname()
        crashed = []
        with self.session() as s:
            for run in s.exec(select(Run).where(Run.status == "running")).all():
                beat = run.heartbeat_at or run.started_at
                reason = presumed_dead(run.host, run.pid, beat, host, alive or pid_alive)
                if reason:
                    for key, value in crash_values(reason, beat, run.started_at, run.output_dir).items():
                        setattr(run, key, value)
                    s.add(run)
                    crashed.append(run.id)
            s.commit()
        return crashed


def _close_and_settle(engine: Engine, path) -> None:
    engine.dispose()
    sqlite_read.settle(path)


def open_store(db: str | Location | None = None, reap: bool = True, readonly: bool = False,
               create: bool = True) -> Store:  # fmt: skip
    """The store a command uses: recording commands create and upgrade it and mark crashed runs; reading
    commands need it to exist (see Store)."""
    if readonly:
        return Store(db, readonly=True)
    return Store(db, create=create, reap=reap)
