"""One recorded command's life: its row, its heartbeat, its signals, and how it ended.

Every command that records something (``run``, ``eval``, ``resume``) goes through ``Lifecycle``::

    life = Lifecycle(store, row)  # reopen=True: a resumed run's row, running again
    with life:                    # writes the row, beats the heartbeat, turns SIGTERM into an exception
        ...                       # the work; an exception ends the block and is recorded, not raised
    with life.finishing():        # Ctrl-C and SIGTERM are held off until the ending is written
        life.finish(metrics=...)  # finished | failed (with the error) | interrupted (Ctrl-C 130, SIGTERM 143)

A run whose process dies without a word (kill -9, power loss) is marked ``crashed`` by the next command that
opens the store (``Store.reap``): its pid is gone on this host, or its heartbeat is older than the stale limit.

Under a launcher (``accelerate launch``, several processes) only the main process records; the others hold a
``Lifecycle`` without a store. When the launcher stops the processes, SIGTERM alone cannot tell whether a person
stopped the run or a rank died (torchrun stops the others with SIGTERM either way), so the other ranks ignore
SIGTERM until the main process is gone, and the main process, on SIGTERM, looks at them: a rank already dead
makes the run ``failed``; all alive makes it ``interrupted``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from .errors import Terminated
from .store.db import HEARTBEAT_SECONDS
from .store.location import StoreError
from .store.sqlite_read import pid_alive

MAIN_GONE_POLL_SECONDS = 0.2


def heartbeat_seconds() -> float:
    """How often a running command refreshes its heartbeat ($GRPO_LAB_HEARTBEAT_SECONDS, for tests)."""
    return float(os.environ.get("GRPO_LAB_HEARTBEAT_SECONDS") or HEARTBEAT_SECONDS)


@dataclass(frozen=True)
class Ranks:
    """The processes of one launch: this one's index and every rank's pid and host (index 0 is the main one)."""

    index: int = 0
    pids: tuple[int, ...] = ()
    hosts: tuple[str, ...] = ()

    @property
    def main(self) -> bool:
        return self.index == 0

    @property
    def size(self) -> int:
        return max(1, len(self.pids))

    def dead_peer(self) -> str | None:
        """'rank 1 (pid 123) died' for the first other rank on this host whose process is gone, else None."""
        here = socket.gethostname()
        for i, (pid, host) in enumerate(zip(self.pids, self.hosts, strict=True)):
            if i != self.index and host == here and not pid_alive(pid):
                return f"rank {i} (pid {pid}) died"
        return None

    def main_alive(self) -> bool:
        if not self.pids or self.hosts[0] != socket.gethostname():
            return True  # another node: the launcher there looks after it
        return pid_alive(self.pids[0])


class _Heartbeat:
    """Refreshes the run's heartbeat from a background thread, so that a long step or a long evaluation does not
    look like a crash to the next command."""

    def __init__(self, store, run_id: str, seconds: float):
        self.store, self.run_id, self.seconds = store, run_id, seconds
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name="grpo-lab-heartbeat")

    def _beat(self):
        while not self.stop_event.wait(self.seconds):
            with contextlib.suppress(Exception):  # a busy store must never kill the run; the next beat retries
                self.store.heartbeat(self.run_id)

    def start(self):
        self.thread.start()

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=5)


class Lifecycle:
    """Owns a recorded command's life; see the module's docstring. ``store`` and ``row`` are None on the
    processes that do not record (ranks other than the main one)."""

    def __init__(
        self, store=None, row=None, ranks: Ranks | None = None, heartbeat: float | None = None, reopen: bool = False,
        queued: bool = False,
    ):  # fmt: skip
        self.store, self.row, self.reopen, self.queued = store, row, reopen, queued
        self.ranks = ranks or Ranks()
        self.heartbeat_seconds = heartbeat_seconds() if heartbeat is None else heartbeat
        self.status, self.error, self.exit_code = "finished", None, 0
        self._heartbeat: _Heartbeat | None = None
        self._previous: dict[int, object] = {}
        self._dead_peer: str | None = None
        self._work_done = threading.Event()

    @property
    def records(self) -> bool:
        return self.store is not None and self.row is not None

    @property
    def run_id(self) -> str | None:
        return self.row.id if self.row is not None else None

    # -- the work --------------------------------------------------------------------------------------------
    def __enter__(self) -> Lifecycle:
        if self.records and self.reopen:  # a resumed run: the same row, running again in this process
            self.store.reopen_run(self.row.id, socket.gethostname(), os.getpid(), wandb_dir=self.row.wandb_dir)
        elif self.records and self.queued:  # a sweep's queued row: claimed, then filled in as it starts
            self.store.start_queued(self.row)
        elif self.records:
            self.store.create_run(self.row)
        if self.records:
            self._heartbeat = _Heartbeat(self.store, self.row.id, self.heartbeat_seconds)
            self._heartbeat.start()
        if self.ranks.main:
            self._install(signal.SIGTERM, self._on_sigterm)
        else:
            self._install(signal.SIGTERM, signal.SIG_IGN)  # the main process decides; see the module's docstring
            threading.Thread(target=self._exit_when_main_is_gone, daemon=True, name="grpo-lab-main-watch").start()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._work_done.set()
        if self._heartbeat is not None:
            self._heartbeat.stop()
        self._restore()
        if exc_type is None:
            return False
        if issubclass(exc_type, KeyboardInterrupt):
            self.status, self.error, self.exit_code = "interrupted", "interrupted by Ctrl-C", 130
        elif issubclass(exc_type, Terminated) and self._dead_peer:
            self.status, self.exit_code = "failed", 1
            self.error = f"{self._dead_peer}; the launcher stopped the other processes"
        elif issubclass(exc_type, Terminated):
            self.status, self.error, self.exit_code = "interrupted", "terminated by SIGTERM", 143
        elif issubclass(exc_type, Exception):
            self.status, self.error, self.exit_code = "failed", f"{exc_type.__name__}: {exc}", 1
            if self.ranks.size > 1 and self.ranks.main:
                peer = self.ranks.dead_peer()  # a collective fails when a peer dies: name the cause
                if peer:
                    self.error = f"{peer}; here: {self.error}"
        else:
            return False  # SystemExit and the like pass through
        return True

    # -- the ending ------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def finishing(self) -> Iterator[Lifecycle]:
        """Hold Ctrl-C and SIGTERM off while the ending is written, so that a second signal (a launcher stops
        its processes after Ctrl-C) cannot leave the row ``running``."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._install(signum, signal.SIG_IGN)
        try:
            yield self
        finally:
            self._restore()

    def finish(self, **values) -> None:
        """Write how the command ended (and ``values``, e.g. its metrics and verdict) to its row. When the store
        refuses the whole record (a full disk), record at least the status and the error in the smallest write;
        when even that fails, say so in one line (StoreError)."""
        if not self.records:
            return
        try:
            self.store.finish_run(self.row.id, self.status, self.error, **values)
        except StoreError as exc:
            error = f"{self.error + '; ' if self.error else ''}the store refused its results: {exc}"
            try:
                self.store.finish_run(self.row.id, "failed", error)
            except StoreError:
                raise StoreError(
                    f"run {self.row.id} {self.status}{f' ({self.error})' if self.error else ''}, but the store "
                    f"could not record it: {exc}"
                ) from None

    # -- signals ---------------------------------------------------------------------------------------------
    def _on_sigterm(self, signum, frame):
        if self.ranks.size > 1:
            self._dead_peer = self.ranks.dead_peer()  # now, before the other ranks are stopped too
        raise Terminated()

    def _install(self, signum: int, handler) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers live on the main thread; a command run from a thread keeps the defaults
        previous = signal.signal(signum, handler)
        self._previous.setdefault(signum, previous)

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _exit_when_main_is_gone(self) -> None:
        while not self._work_done.wait(MAIN_GONE_POLL_SECONDS):
            if not self.ranks.main_alive():
                os._exit(143)  # the main process recorded the ending, or died: nothing is left to do here
