import os
import subprocess
import sys

import pytest

# Never reach for a network or a WandB login in tests.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "disabled"
os.environ["WANDB_SILENT"] = "true"
os.environ["TOKENIZERS_PARALLELISM"] = "false"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Each test runs in its own working directory with its own store."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GRPO_LAB_DB", str(tmp_path / "grpo_lab.db"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    return tmp_path


def grpo_lab(*args: str, check: bool = False, timeout: int = 600, env: dict | None = None):
    """Run the real `grpo-lab` command in a subprocess."""
    proc = subprocess.run(
        [sys.executable, "-c", "from grpo_lab.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"grpo-lab {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def cli():
    return grpo_lab
