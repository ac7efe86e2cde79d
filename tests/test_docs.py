import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_flag_reference_is_generated_from_the_config():
    proc = subprocess.run([sys.executable, "-m", "grpo_lab.docs", "--check"])
    assert proc.returncode == 0, "README.md is out of date: run python -m grpo_lab.docs"


def test_readme_has_setup_main_job_and_test_commands():
    text = README.read_text()
    assert "pip install torch==2.13.0" in text
    assert "grpo-lab run --preset cpu-quick --criteria" in text
    assert "python -m pytest" in text


def test_readme_says_how_to_get_the_cpu_build_of_torch():
    text = " ".join(README.read_text().split())
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in text
    assert "On a stock Linux machine that is PyTorch's default build, with CUDA libraries" in text
    assert "installs a CPU build of torch first" not in text  # what held only on a machine configured so
