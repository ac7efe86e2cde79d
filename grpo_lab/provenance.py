"""Where a run came from: library versions, git state, host, environment; secrets redacted.

Redaction keys on names that are secrets, word by word (``--api_key``, ``HF_TOKEN``, ``WANDB_API_KEY``), never on
substrings of ordinary names (``--max_new_tokens`` and ``TOKENIZERS_PARALLELISM`` are kept). The password of any
URL in a value (``--db postgresql://me:pw@host/lab``, ``GRPO_LAB_DB=...``) is left out, so a recorded command
still reruns, taking the password from the user's own environment (PostgreSQL: ``PGPASSWORD`` or ``~/.pgpass``).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass

SECRET_WORDS = frozenset({"KEY", "APIKEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL",
                          "CREDENTIALS"})  # fmt: skip
REDACTED = "***"
_WORD_BREAK = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:@/?#\s]*):[^@/?#\s]*@")
ENV_PREFIXES = ("WANDB_", "HF_", "GRPO_LAB_", "CUDA_", "OMP_", "TOKENIZERS_", "TRANSFORMERS_", "TORCH_", "MKL_")
PACKAGES = ("grpo-lab", "torch", "transformers", "trl", "datasets", "accelerate", "wandb")


def versions() -> dict[str, str]:
    from importlib import metadata  # here: importing it costs every command 20 ms

    found = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


DIFF_LIMIT = 1_000_000  # bytes of a dirty tree's diff kept with a run (W&B keeps its diff.patch likewise)


@dataclass(frozen=True)
class Code:
    """The code a run ran: the commit of the git work tree around it, whether files tracked there had uncommitted
    changes, and those changes as ``git diff HEAD`` writes them (binary files included), kept when at most
    DIFF_LIMIT bytes of UTF-8. Untracked files are in neither (as in W&B's diff.patch)."""

    commit: str | None = None
    dirty: bool | None = None
    diff: str | None = None
    diff_bytes: int | None = None  # the diff's size, kept or not


def git_state(cwd: str | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git work tree around ``cwd``, or (None, None) outside one."""
    code = code_state(cwd, diff=False)
    return code.commit, code.dirty


def code_state(cwd: str | None = None, diff: bool = True) -> Code:
    """The git state of the work tree around ``cwd`` (see Code); Code() outside one."""

    def git(*args: str) -> bytes:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True, timeout=30).stdout

    try:
        commit = git("rev-parse", "HEAD").decode().strip()
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").strip())
        patch = git("diff", "HEAD", "--binary", "--no-color", "--no-ext-diff") if dirty and diff else b""
    except (OSError, subprocess.SubprocessError, UnicodeDecodeError):
        return Code()
    if not patch:
        return Code(commit, dirty)
    try:
        kept = patch.decode("utf-8") if len(patch) <= DIFF_LIMIT else None
    except UnicodeDecodeError:  # a file in another encoding: the store keeps text
        kept = None
    return Code(commit, dirty, kept, len(patch))


def is_secret_name(name: str) -> bool:
    """Whether a flag or variable name names a secret: one of its words is KEY, TOKEN, SECRET, PASSWORD, ...
    (``--hf-token``, ``WANDB_API_KEY``, ``apiKey``); ``--max_new_tokens`` and ``TOKENIZERS_PARALLELISM`` are not."""
    return any(word.upper() in SECRET_WORDS for word in _WORD_BREAK.split(name))


def without_password(text: str) -> str:
    """``text`` with the password of every URL in it left out: ``postgresql://me:pw@host/lab`` ->
    ``postgresql://me@host/lab``."""
    return _URL_PASSWORD.sub(lambda m: m["head"] + "@", text)


def redact_args(args: list[str]) -> list[str]:
    """Hide the values of flags whose names are secrets (``--api_key X``, ``--hf-token=X``) and the password of
    any URL in the others."""
    out: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next and not arg.startswith("--"):
            out.append(REDACTED)
            hide_next = False
            continue
        hide_next = False
        name, eq, _ = arg.partition("=")
        if arg.startswith("-") and is_secret_name(name):
            out.append(name + "=" + REDACTED if eq else arg)
            hide_next = not eq
        else:
            out.append(without_password(arg))
    return out


def split_db_option(args: list[str]) -> tuple[list[str], str | None]:
    """``args`` without ``--db URL`` / ``--db=URL``, and that URL: a process grpo-lab starts gets the store's
    location in its environment (``GRPO_LAB_DB``), never on its command line, where every user of the machine
    can read it (``ps``)."""
    out: list[str] = []
    db = None
    it = iter(args)
    for arg in it:
        if arg == "--db":
            db = next(it, None)
        elif arg.startswith("--db="):
            db = arg.removeprefix("--db=")
        else:
            out.append(arg)
    return out, db


def environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment variables that shape a run, with secrets redacted and URL passwords left out."""
    env = os.environ if env is None else env
    return {k: REDACTED if is_secret_name(k) else without_password(v) for k, v in sorted(env.items())
            if k.startswith(ENV_PREFIXES)}  # fmt: skip
