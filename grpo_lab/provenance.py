"""Where a run came from: library versions, git state, host, environment; secrets redacted."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from importlib import metadata

SECRET = re.compile(r"KEY|TOKEN|SECRET|PASSWORD", re.IGNORECASE)
REDACTED = "***"
ENV_PREFIXES = ("WANDB_", "HF_", "GRPO_LAB_", "CUDA_", "OMP_", "TOKENIZERS_", "TRANSFORMERS_", "TORCH_", "MKL_")
PACKAGES = ("grpo-lab", "torch", "transformers", "trl", "datasets", "accelerate", "wandb")


def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def git_state(cwd: str | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git work tree around ``cwd``, or (None, None) outside one."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=10).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").strip())
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, dirty


def redact_args(args: list[str]) -> list[str]:
    """Replace the values of flags whose names look secret (``--api_key X``, ``--hf-token=X``)."""
    out: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
        elif arg.startswith("-") and SECRET.search(arg.split("=", 1)[0]):
            if "=" in arg:
                out.append(arg.split("=", 1)[0] + "=" + REDACTED)
            else:
                out.append(arg)
                hide_next = True
        else:
            out.append(arg)
    return out


def environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment variables that shape a run, with secret-looking ones redacted."""
    env = os.environ if env is None else env
    return {k: (REDACTED if SECRET.search(k) else v) for k, v in sorted(env.items()) if k.startswith(ENV_PREFIXES)}
