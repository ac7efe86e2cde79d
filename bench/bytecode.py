"""Compile a checkout's grpo_lab to bytecode before a benchmark times it.

pip compiles a package when it installs it, and Python caches the bytecode of an editable checkout on its first
import, so a person's second command never compiles grpo-lab's source. A shell with PYTHONDONTWRITEBYTECODE set
(some containers set it) never writes that cache, and every timed command would then compile about 30 modules
first (0.1 s on this machine): not what a person's command costs. Python still reads a cache that exists, so the
benchmarks write it here first, as pip would.
"""

import compileall
from pathlib import Path


def compile_package(checkout: Path) -> None:
    folder = checkout / "grpo_lab"
    if not compileall.compile_dir(str(folder), quiet=1):
        raise SystemExit(f"could not compile {folder} to bytecode")
