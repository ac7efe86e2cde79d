"""A throwaway PostgreSQL server for the tests and the benchmark: a real ``postgres`` started from the
installed binaries (Debian's ``postgresql`` package, or any ``initdb`` on PATH) in a temporary folder, on a free
port on 127.0.0.1, with a role that logs in with a password over TCP. Stopped and removed by ``stop``.

PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` OS user (through ``runuser``).
``unavailable()`` says why a server cannot be started here, or None.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ROLE = "lab"


def _bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def unavailable() -> str | None:
    """Why no PostgreSQL server can be started here (None when one can)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'grpo-lab[postgres]')"
    if _bindir() is None:
        return "no PostgreSQL server binaries (initdb): apt-get install postgresql"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a 'postgres' OS user to run the server as"
        if shutil.which("runuser") is None:
            return "running as root without runuser to start the server as 'postgres'"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self):
        self.bindir = _bindir()
        self.password = secrets.token_hex(8)
        self.root = Path(tempfile.mkdtemp(prefix="grpo-lab-pg-"))
        self.data, self.sockets = self.root / "data", self.root / "sockets"
        self.sockets.mkdir()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            self.root.chmod(0o755)
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sockets, "postgres")
        self.port = 0
        self._count = 0

    def _run(self, *args: str) -> None:
        proc = subprocess.run([*self.as_user, *args], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            log = self.root / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed:\n{proc.stdout}\n{proc.stderr}\n{tail}")

    def start(self) -> Server:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth-local=trust",
                  "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")  # fmt: skip
        for attempt in range(5):  # a port taken between choosing and binding: choose again
            self.port = _free_port()
            try:
                self._pg_ctl_start()
                break
            except RuntimeError:
                if attempt == 4:
                    raise
        with self.admin() as conn:
            conn.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{self.password}'")
        return self

    def _pg_ctl_start(self) -> None:
        options = (f"-k {self.sockets} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")  # fmt: skip
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-w",
                  "-t", "60", "-o", options, "start")  # fmt: skip

    def halt(self) -> None:
        """Stop the server (as an administrator restarting it would: its sessions are ended), keeping its data."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        """Start a halted server again, on the same port."""
        self._pg_ctl_start()

    def log(self) -> str:
        """The server's log so far."""
        return (self.root / "log").read_text(errors="replace")

    def create_role(self, name: str, password: str) -> str:
        """A login role with ``password`` and no privileges yet (``admin(database)`` grants them); its name."""
        with self.admin() as conn:
            conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        return name

    def admin(self, database: str = "postgres"):
        import psycopg

        return psycopg.connect(host=str(self.sockets), port=self.port, user="postgres", dbname=database,
                               autocommit=True)  # fmt: skip

    def create_database(self) -> str:
        """A fresh, empty database owned by the role; returns its name."""
        self._count += 1
        name = f"t{os.getpid()}_{self._count}"
        with self.admin() as conn:
            conn.execute(f"CREATE DATABASE {name} OWNER {ROLE}")
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def url(self, database: str, password: bool = True, role: str = ROLE, secret: str | None = None) -> str:
        auth = f"{role}:{secret or self.password}" if password else role
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        for _ in range(3):
            with contextlib.suppress(OSError):
                shutil.rmtree(self.root)
                return
            time.sleep(0.5)
