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
