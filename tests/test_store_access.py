"""Opening a store: paths taken literally, stores that would lose runs refused, reading commands that never
create or write what they may not, damaged and unreachable stores refused in one line, and a store readable by
another user from a folder they may not write."""

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from grpo_lab.store.db import Run, Store, StoreError, iso, now

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
READERS = [
    ["runs"],
    ["compare"],
    ["show", "abcd0000"],
    ["diff", "abcd0000", "abce0001"],
    ["journal", "render", "--stdout"],
]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def execute(path: Path, sql: str) -> None:
    """One statement on a store file with plain sqlite3, committed and closed (as another program would)."""
    conn = sqlite3.connect(path)
    conn.execute(sql)
    conn.commit()
    conn.close()


def one_line_error(proc, *fragments: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("grpo-lab: error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def store_with_runs(path: Path, n: int = 3, **values) -> None:
    store = Store(str(path))
    for i in range(n):
        store.create_run(Run(id=f"abc{'de'[i % 2]}{i:04d}", exp_name=f"e{i}", started_at=iso(now()), host="h",
                             model_name="m", hypothesis="h" * 2000, **values))  # fmt: skip
        store.finish_run(f"abc{'de'[i % 2]}{i:04d}", "finished", metrics={"held_out": 0.5})
    store.close()


def test_paths_with_url_characters_are_taken_literally(isolated):
    newer = isolated / "new#er.db"
    Store(str(newer)).close()
    execute(newer, "INSERT INTO _migrations VALUES ('m999_from_the_future', '2030-01-01')")
    before = digest(newer)
    with pytest.raises(StoreError, match="newer grpo-lab"):
        Store("new#er.db")
    assert digest(newer) == before and not (isolated / "new").exists()
    for name in ("q?x.db", "p%41.db", "sp ace.db"):
        Store(name).close()
        assert (isolated / name).exists(), name
    assert {p.name for p in isolated.iterdir()} == {"new#er.db", "q?x.db", "p%41.db", "sp ace.db"}
    foreign = isolated / "f#x.db"
    execute(foreign, "CREATE TABLE customers (id INTEGER)")
    before = digest(foreign)
    with pytest.raises(StoreError, match="not a grpo-lab store"):
        Store(str(foreign))
    assert digest(foreign) == before and not Path(f"{foreign}-wal").exists()
    Store("sqlite:///p%2541.db").close()  # a URL is a URL: %25 is "%"
    assert (isolated / "p%41.db").exists() and not (isolated / "p%2541.db").exists()


@pytest.mark.parametrize("db", ["", ":memory:", "sqlite://", "sqlite:///:memory:"])
def test_stores_that_would_lose_every_run_are_refused(cli, isolated, db):
    for command in (["runs"], ["note", "abcd", "text"], ["eval", "--model_name", "tiny-arith"]):
        proc = cli(*command, "--db", db)
        one_line_error(proc, "--db")
    assert list(isolated.iterdir()) == []


def test_reading_commands_never_create_a_store(cli, isolated):
    for command in [*READERS, ["note", "abcd", "text"]]:
        proc = cli(*command, "--db", "typo.db")
        one_line_error(proc, f"no grpo-lab store at {isolated / 'typo.db'}")
    proc = cli("runs")  # the default store, from $GRPO_LAB_DB
    one_line_error(proc, f"no grpo-lab store at {isolated / 'grpo_lab.db'}")
    assert list(isolated.iterdir()) == []


def test_unknown_drivers_and_unreachable_servers_are_one_line(cli):
    one_line_error(cli("runs", "--db", "nosuchdb://host/x"), "no database driver")
    one_line_error(cli("compare", "--db", "mysql://me:pw@127.0.0.1:1/x"), "needs the Python package")
    proc = cli("show", "abcd", "--db", "postgresql://me:pw@127.0.0.1:1/lab")
    one_line_error(proc, "cannot reach the store postgresql+psycopg://me@127.0.0.1:1/lab")
    assert "pw" not in proc.stderr.replace("postgresql", "")


def test_a_damaged_store_is_refused_in_one_line_and_never_written(cli, isolated):
    path = isolated / "grpo_lab.db"
    store_with_runs(path, n=60)
    data = bytearray(path.read_bytes())
    page = 4096
    middle = (len(data) // page // 2) * page
    data[middle : middle + page] = b"\xff" * page  # a page in the middle: a run's row, or the tree above it
    path.write_bytes(bytes(data))
    before = digest(path)
    refused = 0
    for command in READERS:
        proc = cli(*command)
        assert proc.returncode in (0, 2) and "Traceback" not in proc.stderr, proc.stderr
        if proc.returncode == 2:
            one_line_error(proc, "damaged")
            refused += 1
    assert refused >= 2  # runs and compare read every run; commands that miss the damage may answer
    for command in (["note", "abcd0000", "x"], ["run", "--hypothesis", "h", "--model_name", "tiny-arith",
                                                 "--max_steps", "1", "--wandb", "disabled"]):  # fmt: skip
        one_line_error(cli(*command), str(path), "damaged")
    assert digest(path) == before


# --- another user, in a folder they may not write --------------------------------------------------------------


def as_nobody() -> tuple[list[str], dict] | str:
    """The command prefix and environment that run grpo-lab as the OS user ``nobody``, or why that cannot be."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        return "needs root and runuser to run commands as the OS user nobody"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), sysconfig.get_paths()["purelib"]])}
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for python in (sys.executable, f"/usr/bin/python{version}"):
        prefix = ["runuser", "-u", "nobody", "--", python]
        probe = subprocess.run([*prefix, "-c", "import grpo_lab.cli, sqlalchemy"], env=env, capture_output=True,
                               cwd="/", text=True)  # fmt: skip
        if probe.returncode == 0:
            return prefix, env
    return f"the user nobody cannot run this Python or read this checkout ({probe.stderr.strip()[-200:]})"


@pytest.fixture
def shared_folder():
    """A folder owned by root that everyone may read and no one else may write."""
    folder = Path(tempfile.mkdtemp(prefix="grpo-lab-shared-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def test_another_user_reads_a_store_from_a_folder_they_may_not_write(cli, shared_folder):
    how = as_nobody()
    if isinstance(how, str):
        pytest.skip(how)
    prefix, env = how

    def nobody(*args: str):
        return subprocess.run([*prefix, "-m", "grpo_lab", *args], env=env, capture_output=True, text=True,
                              cwd="/", timeout=300)  # fmt: skip

    path = shared_folder / "lab.db"
    store_with_runs(path)
    assert cli("note", "abcd0000", "written by the CLI", "--db", str(path)).returncode == 0
    path.chmod(0o644)
    before = digest(path)
    for command in READERS:
        proc = nobody(*command, "--db", str(path), "--format", "csv") if command[0] in ("runs", "compare") else \
            nobody(*command, "--db", str(path))  # fmt: skip
        assert proc.returncode == 0 and not proc.stderr, (command, proc.stderr)
    assert "abcd0000" in nobody("compare", "--db", str(path), "--format", "csv").stdout
    if shutil.which("sqlite3"):
        shell = subprocess.run([*prefix[:4], "sqlite3", str(path), "select count(*) from run"], capture_output=True,
                               text=True)  # fmt: skip
        assert shell.returncode == 0 and shell.stdout.strip() == "3", shell.stderr
    one_line_error(nobody("note", "abcd0000", "x", "--db", str(path)), "read-only to you")
    assert digest(path) == before and sorted(p.name for p in shared_folder.iterdir()) == ["lab.db"]

    # a run that crashed: reported, not marked, by a reader who may not write
    store = Store(str(path))
    store.create_run(Run(id="dead0001", exp_name="d", started_at=iso(now()), host=os.uname().nodename,
                         pid=2**22 + 12345, model_name="m"))  # fmt: skip
    store.close()
    proc = nobody("compare", "--db", str(path), "--format", "csv")
    assert proc.returncode == 0 and "dead0001,d,running" in proc.stdout
    assert proc.stderr.strip().startswith("grpo-lab: note: run dead0001 looks crashed (its process is gone)")
    # a store that needs an upgrade its reader may not write
    old = shared_folder / "old.db"
    shutil.copy(FIXTURES / "store_v1.db", old)
    old.chmod(0o644)
    one_line_error(nobody("runs", "--db", str(old)), "needs an upgrade")
    assert digest(old) == digest(FIXTURES / "store_v1.db")


@pytest.fixture
def small_disk():
    """A real 1 MiB filesystem (tmpfs) to fill up; skipped, saying why, where it cannot be mounted."""
    folder = Path(tempfile.mkdtemp(prefix="grpo-lab-disk-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True,
                             text=True)  # fmt: skip
    if mounted.returncode != 0:
        folder.rmdir()
        pytest.skip(f"cannot mount a small tmpfs to fill ({mounted.stderr.strip() or 'mount failed'})")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)
    folder.rmdir()


def fill(folder: Path, leave: int) -> None:
    """Fill the filesystem of ``folder`` up to ``leave`` bytes free."""
    free = shutil.disk_usage(folder).free
    (folder / "filler").write_bytes(b"\0" * max(0, free - leave))


@pytest.mark.slow
def test_a_run_on_a_full_disk_records_its_cause_or_says_it(cli, small_disk):
    """The cause is recorded when any write can still happen; when none can, the one line says so."""
    from conftest import QUICK_RUN

    path = small_disk / "lab.db"
    Store(str(path)).close()
    fill(small_disk, 96 * 1024)  # room for the shared-memory file and the first writes, not for every prediction
    proc = cli("run", *QUICK_RUN, "--hypothesis", "fills the disk", "--db", str(path), "--output_dir",
               str(Path(tempfile.gettempdir()) / "grpo-lab-full-disk-out"))  # fmt: skip
    last = proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr and last.startswith("grpo-lab: error: run ") and "is full" in last, last
    (small_disk / "filler").unlink()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA quick_check").fetchone() == ("ok",)
    status, error = conn.execute("SELECT status, error FROM run").fetchone()
    conn.close()
    if proc.returncode == 1:  # recorded: the run failed, and why
        assert last.endswith("(recorded in the store)") and status == "failed" and "is full" in error
    else:  # nothing could be written: the one line is all there is, and the store is intact
        assert proc.returncode == 2 and "but the store could not record it" in last and status == "running"
