"""What a grpo-lab command leaves behind when it ends, however it ends: no process and no temporary file.

- **A private temporary folder per command** (``private_tmp``): ``TMPDIR`` and ``tempfile.tempdir`` point into
  ``grpo-lab-PID-HOST-XXXX`` under the system's temporary folder, so what libraries leave there (torchelastic's
  ``torchelastic_*`` log folders, WandB's ``tmp*wandb-media`` and ``tmp*wandb-artifacts``, a process that ended
  through ``os._exit``) goes with the folder when the command ends. Processes the command starts inherit it and
  leave it to their starter. A folder whose command died without a word (``kill -9``) is removed by the next
  command that starts: its PID is gone.
- **No process outlives its starter** (``follow_parent``): a process grpo-lab starts (a rank under accelerate's
  launcher, a sweep's worker) is killed by the kernel when its starter dies (Linux ``PR_SET_PDEATHSIG``), and one
  whose starter died before that was set ends at once.

Standard library only: every command calls this before it imports anything heavy.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import sys
import tempfile
from collections.abc import Iterator

PREFIX = "grpo-lab-"
TMP_ENV = "GRPO_LAB_TMP"  # the folder a starting grpo-lab owns; the processes it starts use it and leave it be
PARENT_ENV = "GRPO_LAB_PARENT"  # the PID of the grpo-lab process that started this one (a launcher, a sweep)
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def host_tag(host: str | None = None) -> str:
    """This machine, in a private folder's name: a temporary folder another machine or container shares holds
    folders whose PIDs mean nothing here, and they are left alone."""
    import zlib

    return f"{zlib.crc32((host or os.uname().nodename).encode()):08x}"


def owner_pid(name: str, host: str | None = None) -> int | None:
    """The PID in the name of a private folder made on this host (``grpo-lab-1234-0a1b2c3d-xyz`` -> 1234), or None
    for any other name."""
    if not name.startswith(PREFIX):
        return None
    pid, sep, rest = name[len(PREFIX) :].partition("-")
    if not sep or not pid.isdigit() or not pid.isascii() or not rest.startswith(host_tag(host) + "-"):
        return None
    return int(pid)


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (a zombie counts as gone)."""
    from .store.sqlite_read import pid_alive as alive

    return alive(pid)


def sweep_stale(base: str, alive=pid_alive) -> list[str]:
    """Remove the private folders in ``base`` that this user's commands left when they died without a word (their
    PID is gone); returns their paths. Others' folders, links and files are never touched."""
    removed = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        pid = owner_pid(entry.name)
        if pid is None or pid == os.getpid():
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or alive(pid):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.path)
    return removed


@contextlib.contextmanager
def private_tmp() -> Iterator[str]:
    """A temporary folder for this command and everything it starts, removed when the command ends (see the
    module's docstring). Nested in a process a grpo-lab command started, the starter's folder is used as it is."""
    saved_tempdir = tempfile.tempdir  # before gettempdir() fills it in
    inherited = os.environ.get(TMP_ENV)
    if inherited and os.path.isdir(inherited) and os.environ.get("TMPDIR") == inherited:
        tempfile.tempdir = inherited
        try:
            yield inherited
        finally:
            tempfile.tempdir = saved_tempdir
        return
    base = tempfile.gettempdir()
    sweep_stale(base)
    folder = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-{host_tag()}-", dir=base)
    saved_env = {k: os.environ.get(k) for k in (TMP_ENV, "TMPDIR")}
    os.environ[TMP_ENV] = os.environ["TMPDIR"] = folder
    tempfile.tempdir = folder
    try:
        yield folder
    finally:
        tempfile.tempdir = saved_tempdir
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(folder, ignore_errors=True)


def follow_parent() -> None:
    """In a process a grpo-lab command started (``GRPO_LAB_PARENT`` names it) or a rank under any launcher: ask the
    kernel to kill this process when its starter dies, then end at once if the starter died already (before the
    request could be made). Nothing happens elsewhere, or off Linux."""
    parent = os.environ.get(PARENT_ENV)
    under_launcher = "LOCAL_RANK" in os.environ and "TORCHELASTIC_RUN_ID" in os.environ
    if not (parent or under_launcher) or not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if parent and parent.isdigit() and os.getppid() != int(parent):
        os._exit(143)  # the starter is gone already: nothing is left to do here
