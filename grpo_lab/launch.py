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
from typing import Any

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


def hand_over(num_processes: int, argv: list[str]) -> None:
    """Replace this process with ``accelerate launch ... -m grpo_lab ARGV``; never returns. Signals sent to this
    pid (Ctrl-C, SIGTERM) then reach accelerate's launcher, which passes them on to every process. ``--db`` moves
    from the command line to the environment, which only this user can read."""
    from .provenance import redact_args, split_db_option

    os.environ[COMMAND_ENV] = shlex.join(["grpo-lab", *redact_args(argv)])
    argv, db = split_db_option(argv)
    if db is not None:  # the store's URL (its password too) reaches the processes through their environment
        os.environ["GRPO_LAB_DB"] = db
    cmd = [sys.executable, "-m", "accelerate.commands.launch", *launcher_args(num_processes, free_port()),
           "-m", "grpo_lab", *argv]  # fmt: skip
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, cmd)
