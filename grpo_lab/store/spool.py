"""A run's records while its store is unreachable: a spool file beside the run's output folder, written in order
to the store when it returns, or later by `grpo-lab sync SPOOL` (as WandB's offline runs by `wandb sync`).

``Spooled`` stands between a recording run and its store. While the store answers, every write goes straight to
it, as without a spool. When a write finds the store unreachable (StoreUnreachable: the server stopped, restarts,
or the network is down), that write and every later one are appended to ``OUTPUT_DIR.spool.jsonl`` (one JSON
object a line, flushed to disk before the call returns, so a checkpoint written after it counts) and the training
goes on; a background thread tries the store again with backoff and writes the spooled records in order, each
exactly once (a write whose answer was lost with the connection is found there already and skipped). When the
spool is empty again its file is removed. At the end of the run ``settle`` waits a grace period for the store; if
it is still unreachable, the spool keeps the whole record (with how the run ended) and the run says how to upload
it. A run the store lost and that ended so is marked crashed by the next command, with where its records wait.

The spool never holds the store's password (it names the store as it is shown, without it), and is readable by
its owner only. Standard library only; the store's own methods do the SQL.
"""

from __future__ import annotations

import json
import math
import os
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ..errors import GrpoLabError
from ..text import printable
from .location import StoreError, StoreUnreachable

SUFFIX = ".spool.jsonl"
FORMAT = 1
GRACE_SECONDS = 300.0  # how long a run waits for an unreachable store after its work is done
FIRST_RETRY_S, MAX_RETRY_S = 1.0, 10.0  # the backoff between attempts to reach the store again
MAX_LINE = 256 * 2**20  # a record larger than this is not one a run writes
HEADER_MAX = 64 * 1024
PREDICTION_FIELDS = ("prompt", "answer", "completion", "extracted", "correct", "task_type", "operation",
                     "difficulty")  # fmt: skip
OPS = ("record", "heartbeat", "finish", "note", "end", "synced")


def _now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def grace_seconds(given: float | None = None) -> float:
    """The grace period: ``given`` (--store_grace), else $GRPO_LAB_STORE_GRACE, else GRACE_SECONDS."""
    if given is not None:
        return given
    raw = os.environ.get("GRPO_LAB_STORE_GRACE") or ""
    if not raw.strip():
        return GRACE_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= 10**7:  # NaN too
        raise GrpoLabError(f"$GRPO_LAB_STORE_GRACE={printable(raw)[:40]!r} is not a number of seconds from 0 to "
                           "10000000; set it to e.g. 300, or unset it")  # fmt: skip
    return seconds


def path_for(output_dir: str | os.PathLike) -> Path:
    """Where a run whose output folder is ``output_dir`` keeps its spool: beside the folder (not in it: the
    folder is the model's, and a new run's must be empty)."""
    folder = Path(os.path.abspath(output_dir))
    return folder.with_name(folder.name + SUFFIX)


# --- reading a spool ---------------------------------------------------------------------------------------------


@dataclass
class Spool:
    """A spool file as read back: the run it belongs to, the store it was recorded for, its records in order,
    and whether it ended (how the run ended while the store was away) or was uploaded already."""

    path: Path
    run_id: str
    store: str
    ops: list[dict[str, Any]]
    ended: dict[str, Any] | None = None
    synced: dict[str, Any] | None = None
    cut_short: bool = False  # its last line was cut short (the run stopped while writing it)

    def counts(self) -> str:
        """``12 steps, 48 samples, 30 results`` (what the records hold) for messages."""
        steps = sum(len(op["steps"]) for op in self.ops if op["op"] == "record")
        samples = sum(len(op["samples"]) for op in self.ops if op["op"] == "record")
        results = sum(len(op["results"]) for op in self.ops if op["op"] == "record")
        parts = [f"{steps} steps", f"{samples} samples", f"{results} results"]
        if any(op["op"] == "finish" for op in self.ops):
            parts.append("the run's ending")
        return ", ".join(parts)


def _damaged(path: Path, where: str, why: str) -> GrpoLabError:
    return GrpoLabError(f"{printable(path)} {where} is not a grpo-lab spool record ({printable(why)}); nothing was "
                        "uploaded")  # fmt: skip


def _lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, line, whether it ended with a newline), each at most MAX_LINE bytes."""
    with open(path, "rb") as f:
        number = 0
        while True:
            limit = MAX_LINE if number else HEADER_MAX  # a file whose first line is no header is refused at once
            line = f.readline(limit + 1)
            if not line:
                return
            number += 1
            if len(line) > limit:
                raise _damaged(path, f"line {number}", f"longer than a spool's {limit // 1024:,} KiB")
            yield number, line, line.endswith(b"\n")


def check_file(path: Path, what: str = "") -> None:
    """Refuse what is not a regular file (a folder, a pipe that would block, a device that never ends)."""
    shown = printable(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise GrpoLabError(f"no spool at {shown}; a run that lost its store names its spool when it ends") from None
    except OSError as exc:
        raise GrpoLabError(f"cannot read {shown} ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise GrpoLabError(f"{shown} is not a regular file{what}; give the spool a run named (OUTPUT_DIR{SUFFIX})")


def load(path: Path) -> Spool:
    """A spool file, every line checked before anything is uploaded; refuses a file that is not one in one line.
    A last line cut short (the run stopped in the middle of writing it) is left out, and said so."""
    check_file(path)
    header, ops, cut_short = None, [], False
    try:
        lines = list(_lines(path))
    except OSError as exc:
        raise GrpoLabError(f"cannot read {printable(path)} ({exc.strerror})") from None
    for number, raw, whole in lines:
        try:
            value = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            if not whole and number == len(lines) and header is not None:
                cut_short = True
                break
            raise _damaged(path, f"line {number}", str(exc)[:80]) from None
        if header is None:
            header = _check_header(path, value)
            continue
        ops.append(_check_op(path, number, value))
    if header is None:
        raise _damaged(path, "", "it is empty")
    spool = Spool(path, header["run_id"], header["store"], [], cut_short=cut_short)
    for op in ops:
        if op["op"] == "end":
            spool.ended = op
        elif op["op"] == "synced":
            spool.synced = op
        else:
            spool.ops.append(op)
    return spool


def _check_header(path: Path, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or value.get("grpo_lab_spool") is None:
        raise _damaged(path, "", "its first line is no spool header: is it the spool a run named?")
    if value["grpo_lab_spool"] != FORMAT:
        raise GrpoLabError(f"{printable(path)} was written by another grpo-lab (spool format "
                           f"{printable(repr(value['grpo_lab_spool']))[:40]}); sync it with that version")  # fmt: skip
    run_id = value.get("run_id")
    if not isinstance(run_id, str) or not run_id or not run_id.isalnum() or len(run_id) > 64:
        raise _damaged(path, "line 1", "no run ID")
    if not isinstance(value.get("store"), str):
        raise _damaged(path, "line 1", "no store")
    return value


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _rows(value: Any, types: tuple, optional: tuple = ()) -> bool:
    """Whether ``value`` is a list of rows whose fields have ``types`` (a type, or a tuple of them, per field),
    then, where a row is longer, ``optional`` ones (each also None)."""
    if not isinstance(value, list):
        return False
    for row in value:
        if not isinstance(row, list) or not len(types) <= len(row) <= len(types) + len(optional):
            return False
        extra = row[len(types) :]
        if any(field is not None and not isinstance(field, kind) for field, kind in zip(extra, optional, strict=False)):
            return False
        for field, kind in zip(row[: len(types)], types, strict=True):
            if kind == "number":
                if not _is_number(field):
                    return False
            elif not isinstance(field, kind) or isinstance(field, bool) and kind is int:
                return False
    return True


def _check_op(path: Path, number: int, op: Any) -> dict[str, Any]:
    def bad(why: str) -> GrpoLabError:
        return _damaged(path, f"line {number}", why)

    if not isinstance(op, dict) or op.get("op") not in OPS:
        raise bad(f"the kind of record is not one of {', '.join(OPS)}")
    if not isinstance(op.get("at"), str):
        raise bad("no time")
    try:
        datetime.fromisoformat(op["at"])
    except ValueError:
        raise bad(f"the time {op['at'][:40]!r} is not a date") from None
    kind = op["op"]
    if kind == "record":
        steps = op.get("steps")
        if not isinstance(steps, list) or not all(
            isinstance(s, list) and len(s) == 2 and isinstance(s[0], int) and isinstance(s[1], dict)
            and all(isinstance(k, str) and (v is None or _is_number(v)) for k, v in s[1].items())
            for s in steps
        ):  # fmt: skip
            raise bad("its steps are not (step, metrics) pairs")
        if not _rows(op.get("samples"), (int, int, str, str, "number", "number"), (str,)):
            raise bad("its samples are not (step, index, prompt, completion, reward, advantage[, answer]) rows")
        if not _rows(op.get("results"), (str, str, str, str, int, int)):
            raise bad("its results are not (stage, split, dimension, group, correct, total) rows")
        predictions = op.get("predictions")
        if not _rows(predictions, (str, str, int, dict)) or not all(
            set(p[3]) == set(PREDICTION_FIELDS) for p in predictions
        ):
            raise bad("its predictions are not (stage, split, index, prediction) rows")
    elif kind == "finish":
        metrics = op.get("metrics")
        if not isinstance(op.get("status"), str) or not (op.get("error") is None or isinstance(op["error"], str)):
            raise bad("no status")
        if metrics is not None and not (isinstance(metrics, dict) and all(_is_number(v) for v in metrics.values())):
            raise bad("its metrics are not numbers")
        if not isinstance(op.get("values"), dict) or not set(op["values"]) <= FINISH_VALUES:
            raise bad("its values are not a run's ending")
    elif kind == "note" and not (isinstance(op.get("text"), str) and isinstance(op.get("kind"), str)):
        raise bad("no note")
    return op


FINISH_VALUES = {"train_seconds", "verdict", "verdict_detail"}


def state(path: Path) -> Spool | None:
    """What a spool at ``path`` holds, if a readable one is there (None: none, or not a spool)."""
    try:
        return load(path)
    except GrpoLabError:
        return None


def waiting(output_dir: str | None) -> str | None:
    """Where the records of a run with this output folder wait to be uploaded, in words, when a spool that was
    not uploaded yet is there (from this machine's point of view); None otherwise. For the crash mark."""
    if not output_dir:
        return None
    path = path_for(output_dir)
    try:
        if not path.is_file():
            return None
    except OSError:
        return None
    spool = state(path)
    if spool is None or spool.synced is not None:
        return None
    if spool.ended is not None:
        return (f"it {spool.ended.get('status', 'ended')} without the store at {spool.ended['at']}, its whole record "
                f"in {path}: upload it with grpo-lab sync {path}")  # fmt: skip
    return f"its records since then wait in {path}: upload them with grpo-lab sync {path}"


def check_free(path: Path, run_id: str) -> None:
    """Refuse to start (or resume) a run whose spool's place holds records not uploaded yet, or something that is
    not a spool: they would be written over."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise GrpoLabError(f"{path} (where the run would keep its records if the store became unreachable) is not "
                           "a regular file; move it away or choose another --output_dir")  # fmt: skip
    spool = state(path)
    if spool is not None and spool.synced is not None:
        return  # uploaded already: its records are in the store, and it is written over
    if spool is not None:
        who = "this run" if spool.run_id == run_id else f"run {spool.run_id}"
        raise GrpoLabError(f"{path} holds records of {who} that are not in the store yet; upload them first: "
                           f"grpo-lab sync {path}")  # fmt: skip
    raise GrpoLabError(f"{path} (where the run would keep its records if the store became unreachable) is not a "
                       "spool of grpo-lab's; move it away or choose another --output_dir")  # fmt: skip


# --- writing the records to the store ----------------------------------------------------------------------------


def apply(store, run_id: str, op: dict[str, Any]) -> None:
    """Write one spooled record to the store, as the run would have written it at the time it was made; a record
    already there (its answer was lost with the connection) is left as it is."""
    kind, at = op["op"], op["at"]
    if kind == "record":
        store.record(
            run_id,
            steps=[(s, m) for s, m in op["steps"]],
            samples=[tuple(s) for s in op["samples"]],
            results=[tuple(r) for r in op["results"]],
            predictions=[(st, sp, i, SimpleNamespace(**p)) for st, sp, i, p in op["predictions"]],
            at=at,
            replay=True,
        )
    elif kind == "heartbeat":
        store.heartbeat(run_id, at=at)
    elif kind == "finish":
        store.finish_run(run_id, op["status"], op["error"], metrics=op["metrics"], at=at, **op["values"])
    elif kind == "note":
        store.add_note(run_id, op["text"], op["kind"], at=at, once=True)


def _prediction(p: Any) -> dict[str, Any]:
    return {name: getattr(p, name) for name in PREDICTION_FIELDS}


class Spooled:
    """A run's store, with its spool for the times the store cannot be reached (see the module's docstring).
    Writes a run makes while it works (``record``, ``heartbeat``, ``finish_run``, ``add_note``) go through the
    spool when they must; everything else goes straight to the store."""

    def __init__(self, store, run_id: str, path: Path, host: str | None = None, pid: int | None = None):
        check_free(path, run_id)
        self.store, self.run_id, self.path = store, run_id, Path(path)
        self.host, self.pid = host, pid
        self.lost: str | None = None  # why the store was last lost
        self.failure: BaseException | None = None  # what the store answered a spooled record with, if not taken
        self._lock = threading.Lock()
        self._queue: list[dict[str, Any]] = []  # records not known to be in the store, oldest first
        self._file = None
        self._draining = False
        self._given_up = False
        self._stop = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    @property
    def spooling(self) -> bool:
        return bool(self._queue)

    # -- the writes of a run ---------------------------------------------------------------------------------
    def record(self, run_id, steps=(), samples=(), results=(), predictions=()) -> None:
        steps, samples, results, predictions = list(steps), list(samples), list(results), list(predictions)
        self._send(
            lambda: self.store.record(run_id, steps, samples, results, predictions),
            lambda: {"op": "record", "steps": [[s, m] for s, m in steps], "samples": [list(s) for s in samples],
                     "results": [list(r) for r in results],
                     "predictions": [[st, sp, i, _prediction(p)] for st, sp, i, p in predictions]},
        )  # fmt: skip

    def heartbeat(self, run_id) -> None:
        self._send(lambda: self.store.heartbeat(run_id), lambda: {"op": "heartbeat"})

    def finish_run(self, run_id, status, error=None, metrics=None, **values) -> None:
        unknown = set(values) - FINISH_VALUES
        if unknown:
            raise ValueError(f"a spool does not keep {', '.join(sorted(unknown))}")
        self._send(
            lambda: self.store.finish_run(run_id, status, error, metrics=metrics, **values),
            lambda: {"op": "finish", "status": status, "error": error, "metrics": metrics, "values": values},
        )

    def add_note(self, run_id, text, kind="comment") -> None:
        at = _now()  # the note's time, whichever way it goes: one written but unanswered is found by it, not doubled
        self._send(lambda: self.store.add_note(run_id, text, kind, at=at),
                   lambda: {"op": "note", "text": text, "kind": kind}, at)  # fmt: skip

    def _send(self, direct, spooled, at: str | None = None) -> None:
        at = at or _now()
        with self._lock:
            if not self._queue and self.failure is None and not self._given_up:
                try:
                    direct()
                    return
                except StoreUnreachable as lost:
                    self.lost = str(lost)
            self._append({**spooled(), "at": at})

    # -- the spool file ----------------------------------------------------------------------------------------
    def _append(self, op: dict[str, Any]) -> None:
        """Keep ``op`` in the spool, on disk before this returns (called with the lock held)."""
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)  # lost before training made the output folder
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                self._file = os.fdopen(fd, "w", encoding="utf-8")
                header = {"grpo_lab_spool": FORMAT, "run_id": self.run_id, "store": str(self.store.location),
                          "created_at": op["at"]}  # fmt: skip
                self._file.write(json.dumps(header) + "\n")
            self._file.write(json.dumps(op) + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise StoreError(f"the store is unreachable ({self.lost}) and the spool {self.path} cannot be written "
                             f"({exc.strerror}); the records since then are lost") from None  # fmt: skip
        self._queue.append(op)
        if not self._draining and not self._given_up and op["op"] != "end":
            self._draining = True
            threading.Thread(target=self._drain, daemon=True, name="grpo-lab-spool").start()

    def _close(self, remove: bool) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            if remove:
                self.path.unlink(missing_ok=True)

    def _drain(self) -> None:
        """Write the spooled records to the store in order as soon as it answers again, waiting longer between
        attempts (up to MAX_RETRY_S) while it does not."""
        delay, revived = FIRST_RETRY_S, False
        while True:
            with self._lock:
                if self._given_up or not self._queue:
                    self._draining = False
                    return
                op = self._queue[0]
            try:
                if not revived and self.host is not None:
                    self.store.revive(self.run_id, self.host, self.pid)  # a run marked crashed meanwhile runs on
                revived = True
                apply(self.store, self.run_id, op)
            except StoreUnreachable as lost:
                self.lost = str(lost)
                if self._stop.wait(delay):
                    with self._lock:
                        self._draining = False
                    return
                delay = min(delay * 2, MAX_RETRY_S)
                continue
            except Exception as exc:  # the store answered, but refused: the spool keeps everything for sync
                with self._lock:
                    self.failure, self._draining = exc, False
                return
            delay = FIRST_RETRY_S
            with self._lock:
                if self._given_up:
                    self._draining = False
                    return
                self._queue.pop(0)
                if not self._queue:
                    self._close(remove=True)  # every record is in the store
                    self._draining = False
                    return

    # -- the end of the run ------------------------------------------------------------------------------------
    def settle(self, grace: float, status: str, error: str | None = None) -> Path | None:
        """Wait up to ``grace`` seconds for the spooled records to reach the store. None when they all did (or
        there were none); else the spool's path, the spool ending with how the run ended."""
        deadline = time.monotonic() + max(0.0, grace)
        while True:
            with self._lock:
                if not self._queue:
                    return None
                if self.failure is not None or time.monotonic() >= deadline:
                    self._given_up = True
                    self._stop.set()
                    self._append({"op": "end", "at": _now(), "status": status, "error": error})
                    self._close(remove=False)
                    return self.path
            time.sleep(0.1)

    def give_up_line(self, location: Any, grace: float) -> str:
        """The one line that says why the run's record is not in the store, and how to upload it."""
        why = (f"the store refused its records ({self.failure})" if self.failure is not None
               else f"the store {location} stayed unreachable for {grace:g} s after the run ended")  # fmt: skip
        db = f" --db {location}" if getattr(location, "source", "") == "--db" else ""
        return f"{why}; its whole record is in {self.path}: upload it with grpo-lab sync {self.path}{db}"


# --- grpo-lab sync -------------------------------------------------------------------------------------------------


@dataclass
class Synced:
    run_id: str
    counts: str
    status: str | None  # how the run ended, if the spool says
    cut_short: bool


def check_run(store, spool: Spool):
    """The run a spool belongs to, in this store and not running (it would write its spool itself); else a
    one-line error. Works on a store opened for reading, so that a refused sync changes nothing."""
    run = _run(store, spool.run_id)
    if run is None:
        raise GrpoLabError(f"no run {spool.run_id} in the store {store.location}; the spool was recorded for "
                           f"{printable(spool.store)}: pass that store with --db")  # fmt: skip
    if run.status == "running":
        raise GrpoLabError(f"run {spool.run_id} is still running (pid {run.pid} on {run.host}); it writes its spool "
                           "to the store itself when the store answers again")  # fmt: skip
    return run


def sync(store, spool: Spool) -> Synced:
    """Write a spool's records to the store, in order, each once; then mark the spool uploaded (its last line)."""
    run = check_run(store, spool)
    for op in spool.ops:
        apply(store, spool.run_id, op)
    finish = next((op for op in reversed(spool.ops) if op["op"] == "finish"), None)
    if finish is None and run.status == "crashed":  # it stopped for good before its ending was recorded
        store.update_run(spool.run_id, error="the run stopped while the store was unreachable, before its ending was "
                         "recorded; what it recorded until then was uploaded with grpo-lab sync")  # fmt: skip
    try:
        with open(spool.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"op": "synced", "at": _now(), "store": str(store.location)}) + "\n")
    except OSError:
        pass  # the records are in the store; a second sync writes nothing new
    return Synced(spool.run_id, spool.counts(), finish["status"] if finish else None, spool.cut_short)


def _run(store, run_id: str):
    from .db import RunNotFound

    try:
        run = store.find_run(run_id).run
    except RunNotFound:
        return None
    return run if run.id == run_id else None
