"""Several processes, through accelerate: which process this is, what the processes share, and handing a
command over to accelerate's launcher. Nothing distributed is written by hand here; accelerate (and the
torch.distributed process group it sets up: NCCL on GPUs, gloo on CPUs) does the work.

``accelerate launch -m grpo_lab run ...`` and ``grpo-lab run --num_processes N`` (which hands over to
``accelerate launch``) start N copies of the same command; every copy trains and evaluates its share, and only
the main one (rank 0) records.
"""

from __future__ import annotations

import os
import shlex
import socket
import sys
from typing import Any, NoReturn

from .lifecycle import Ranks

COMMAND_ENV = "GRPO_LAB_COMMAND"  # the command as typed, handed to the processes the launcher starts


def world_size() -> int:
    """How many processes the launcher started (1 without a launcher); read from the environment, no torch."""
    return int(os.environ.get("WORLD_SIZE") or 1)


def process_index() -> int:
    return int(os.environ.get("RANK") or 0)


def is_main() -> bool:
    return process_index() == 0


def state():
    """accelerate's PartialState, set up as the trainer will set it up (CPU processes talk over gloo), so that
    the process group exists before training: for the start, the shared evaluation and the model's device."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def ranks() -> Ranks:
    """Every process's pid and host, known to all of them (one collective when there are several)."""
    me = (os.getpid(), socket.gethostname())
    if world_size() == 1:
        return Ranks(0, (me[0],), (me[1],))
    from accelerate.utils import gather_object

    index = state().process_index
    everyone = gather_object([me])
    return Ranks(index, tuple(p for p, _ in everyone), tuple(h for _, h in everyone))


def from_main(value: Any) -> Any:
    """The main process's ``value``, on every process (the others pass anything, e.g. None)."""
    if world_size() == 1:
        return value
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value], from_process=0)[0]


def gather(items: list) -> list:
    """Every process's ``items``, concatenated in rank order, on every process."""
    if world_size() == 1:
        return list(items)
    from accelerate.utils import gather_object

    return gather_object(list(items))


def typed_command(argv: list[str]) -> list[str]:
    """The command a person typed: the launcher's when grpo-lab handed over to it, else an equivalent one."""
    handed = os.environ.get(COMMAND_ENV)
    if handed:
        return shlex.split(handed)
    if world_size() > 1:
        return ["accelerate", "launch", "--num_processes", str(world_size()), "-m", "grpo_lab", *argv[1:]]
    return argv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launcher_args(num_processes: int, port: int) -> list[str]:
    """``accelerate launch`` options for N processes on this machine (one per GPU; gloo on a CPU-only one)."""
    args = ["--num_processes", str(num_processes), "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no", "--main_process_port", str(port)]  # fmt: skip
    return (["--multi_gpu"] if num_processes > 1 else []) + args


def hand_over(num_processes: int, argv: list[str]) -> NoReturn:
    """Run accelerate's launcher in this process for ``grpo-lab ARGV`` on N processes; never returns (SystemExit with
    the launch's exit code). Signals sent to this pid (Ctrl-C, SIGTERM) reach the launcher, which passes them on to
    every process; it ends 130 / 143 with the main process's one line, nothing more (no launcher traceback, no
    torchelastic warnings). Each process dies with this one (processes.follow_parent). ``--db`` moves from the
    command line to the environment, which only this user can read."""
    from .processes import PARENT_ENV
    from .provenance import redact_args, split_db_option

    os.environ[COMMAND_ENV] = shlex.join(["grpo-lab", *redact_args(argv)])
    argv, db = split_db_option(argv)
    if db is not None:  # the store's URL (its password too) reaches the processes through their environment
        os.environ["GRPO_LAB_DB"] = db
    os.environ[PARENT_ENV] = str(os.getpid())
    args = [*launcher_args(num_processes, free_port()), "-m", "grpo_lab", *argv]
    sys.stdout.flush()
    sys.stderr.flush()
    code = 1
    try:
        try:
            from accelerate.commands.launch import launch_command, launch_command_parser

            quiet_launcher()
            launch_command(launch_command_parser().parse_args(args))
            code = 0
        finally:
            leave_quietly_on_signals()  # the launcher's signal handlers raise; a late Ctrl-C must not
    except BaseException as ended:  # noqa: BLE001  every ending of the launch becomes an exit code and one line
        code, message = launch_ending(ended)
        if message:
            print(f"grpo-lab: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def quiet_launcher() -> None:
    """torchelastic logs each signal and each process it stops as warnings, and a failed process as errors; the
    main process says what happened in its own line, so the launcher's loggers only speak of the launcher's own
    breakdowns."""
    import logging

    import torch.distributed.elastic.agent.server.api  # noqa: F401  (its loggers exist once imported)
    import torch.distributed.elastic.multiprocessing.api  # noqa: F401
    import torch.distributed.run  # noqa: F401

    for name in list(logging.root.manager.loggerDict):
        if name.startswith(("torch.distributed.elastic", "torch.distributed.run", "torch.distributed.launcher")):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def leave_quietly_on_signals() -> None:
    """After the launch: Ctrl-C or SIGTERM end this process at once with 130 / 143 and no traceback."""
    import signal

    def leave(signum, frame):
        os._exit(128 + signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, leave)


def launch_ending(ended: BaseException) -> tuple[int, str | None]:
    """How a launch that ended with ``ended`` exits: its code, and a line to print when no process said why.

    accelerate exits 128 + N after signal N stopped the processes (each process said how it ended); a process that
    failed makes the launcher raise ChildFailedError: the launch exits as the main process did (it printed its own
    line), or, when a signal killed the main process, 128 + N with a line that says so."""
    import signal

    from .errors import Terminated

    if isinstance(ended, SystemExit):
        code = ended.code
        code = code if isinstance(code, int) else (0 if code is None else 1)
        # accelerate turns a Ctrl-C that came before any process started into exit 130: no process spoke
        return code, "interrupted" if isinstance(ended.__context__, KeyboardInterrupt) else None
    if isinstance(ended, KeyboardInterrupt):
        return 130, "interrupted"
    if isinstance(ended, Terminated):
        return 143, "terminated"
    sigval = getattr(ended, "sigval", None)  # torchelastic's SignalException, had it got past accelerate
    if sigval is not None:
        return 128 + int(sigval), None
    failures = getattr(ended, "failures", None)  # ChildFailedError
    if failures:
        rank = 0 if 0 in failures else min(failures)
        failure = failures[rank]
        if failure.exitcode >= 0:
            return failure.exitcode, None
        sig = -failure.exitcode
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return 128 + sig, f"process {rank} (pid {failure.pid}) was killed by {name}; the launcher stopped the others"
    return 1, f"the launcher failed: {type(ended).__name__}: {ended}"
