"""A researcher's own task: a file (examples/sort_task.py), an installed package's entry point, and what goes wrong
with tasks and rewards written by hand: one line each, exit 2, nothing written (or, for a reward that misbehaves
mid-training, the run failed with the reason recorded and nothing else lost)."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from conftest import call, grpo_lab, sql_rows

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "examples" / "sort_task.py"
SMALL = ["--model_name", "tiny-arith", "--n_samples", "32", "--batch_size", "16", "--num_generations", "4",
         "--eval_samples", "12", "--wandb", "disabled", "--threads", "1"]  # fmt: skip


@pytest.mark.slow
def test_the_example_task_trains_and_shows_everywhere(isolated, cli):
    proc = cli("run", "--task", str(EXAMPLE), *SMALL, "--max_steps", "3", "--hypothesis", "GRPO on sorting",
               "--criteria", "sort-v1_overlap = 0", "--output_dir", "out")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    db = isolated / "grpo_lab.db"
    ((run_id, config, task, verdict),) = sql_rows(db, "SELECT id, config, task, verdict FROM run")
    config, task = json.loads(config), json.loads(task)
    assert (
        config["task"] == str(EXAMPLE) and config["reward"] == "task" and config["eval_suite"].endswith("sort-v1.jsonl")
    )
    assert task["task"]["name"] == "sort-numbers" and task["task"]["version"] == "1"
    assert len(task["task"]["sha256"]) == 64 and task["task"]["source"] == str(EXAMPLE)
    assert task["rewards"] == [{"name": "task", "functions": ["sorted_reward", "same_numbers_reward"], "weight": 1.0}]
    assert verdict == "confirmed"  # the suite is held out of training by construction
    groups = {(s, g) for s, g in sql_rows(db, "SELECT split, grp FROM result WHERE dimension = 'operation'")}
    assert {(s, g) for s in ("train", "held_out", "sort-v1") for g in ("len2", "len3", "len4")} <= groups
    steps = [json.loads(m) for (m,) in sql_rows(db, "SELECT metrics FROM step ORDER BY step")]
    assert "rewards/sorted_reward/mean" in steps[0] and "rewards/same_numbers_reward/mean" in steps[0]
    answers = sql_rows(db, "SELECT completion, extracted FROM sample")
    assert answers and all(e is None or e.replace(" ", "").lstrip("-").isdigit() for _, e in answers)
    # the journal says which task it was; compare and the report show the run with its own groups
    entry = cli("journal", "render", run_id, "--stdout").stdout
    assert f"- Task: sort-numbers v1 ({EXAMPLE}, sha256 {task['task']['sha256'][:12]})" in entry
    rows = json.loads(cli("compare", "--format", "json", "--all-columns").stdout)
    assert rows[0]["task"] == str(EXAMPLE) and "sort-v1[len3]" in rows[0]
    report = cli("report", "--out", "r.html")
    assert report.returncode == 0 and run_id in (isolated / "r.html").read_text()


ENTRY_TASK = """
import random
from grpo_lab.tasks import Problem, Task

class Echo(Task):
    name = "echo-digit"
    version = "2"
    description = "repeat one digit"

    def generate(self, rng: random.Random) -> Problem:
        d = rng.randint(0, 9)
        return Problem(f"Calculate: {d} + 0 = ", str(d), operation="echo")
"""


def install_entry_point(root: Path) -> dict[str, str]:
    """A tiny installed distribution offering a task in the grpo_lab.tasks group, as pip would lay it out."""
    (root / "echo_tasks").mkdir()
    (root / "echo_tasks" / "__init__.py").write_text(ENTRY_TASK)
    info = root / "echo_tasks-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-tasks\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[grpo_lab.tasks]\necho = echo_tasks:Echo\n")
    return {"PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.slow
def test_a_task_an_installed_package_offers_is_listed_and_runs(isolated, tmp_path_factory):
    env = install_entry_point(tmp_path_factory.mktemp("site"))
    listed = grpo_lab("tasks", env={**env, "COLUMNS": "200"})
    assert listed.returncode == 0 and "echo" in listed.stdout and "echo-tasks: echo_tasks:Echo" in listed.stdout
    proc = grpo_lab("run", "--task", "echo", *SMALL, "--n_samples", "8", "--batch_size", "8", "--eval_samples", "2",
                    "--max_steps", "1", "--hypothesis", "an installed task", env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ((task, name),) = sql_rows(isolated / "grpo_lab.db", "SELECT task, exp_name FROM run")
    assert json.loads(task)["task"]["name"] == "echo-digit" and json.loads(task)["task"]["version"] == "2"
    assert name.startswith("grpo_echo-digit_b8_g4")


BAD_TASKS = {
    "raises.py": "raise ValueError('broken on purpose')\n",
    "nothing.py": "x = 1\n",
    "two.py": "from grpo_lab.tasks import Task\nclass A(Task):\n    name = 'a'\nclass B(Task):\n    name = 'b'\n",
    "noname.py": "from grpo_lab.tasks import Task\nclass A(Task):\n    def generate(self, rng): ...\n",
    "builtin-name.py": "from grpo_lab.tasks import Task\nclass A(Task):\n    name = 'arithmetic'\n",
    "none.py": "from grpo_lab.tasks import Task\nclass A(Task):\n    name = 'none'\n    def generate(self, rng):\n"
    "        return None\n",
    "tiny-space.py": "from grpo_lab.tasks import Problem, Task\nclass A(Task):\n    name = 'tiny'\n"
    "    def generate(self, rng):\n        return Problem('Q: ', '1')\n",
    "conflict.py": "from grpo_lab.tasks import Problem, Task\nclass A(Task):\n    name = 'c'\n"
    "    def generate(self, rng):\n        return Problem('Q: ', str(rng.randint(0, 1)))\n",
    "int-answer.py": "from grpo_lab.tasks import Problem, Task\nclass A(Task):\n    name = 'i'\n"
    "    def generate(self, rng):\n        return Problem(f'Q{rng.random()}: ', 7)\n",
    "escape.py": "from grpo_lab.tasks import Problem, Task\nclass A(Task):\n    name = 'e'\n"
    "    def generate(self, rng):\n        return Problem(f'Q{rng.random()}\\x1b[2J: ', '1')\n",
    "overlap.py": "from grpo_lab.tasks import Problem, Task\nclass A(Task):\n    name = 'o'\n    suite = 's.jsonl'\n"
    "    def generate(self, rng):\n        return Problem(f'Q{rng.randint(0, 999)}: ', '1')\n"
    "    def problems(self, n, seed, exclude=()):\n"
    "        return [Problem(f'Q{i}: ', '1') for i in range(n)]\n",
    "rewards.py": "def not_callable_holder():\n    pass\nVALUE = 3\n",
}
SUITE_ROW = '{"prompt": "Q3: ", "answer": "1", "task_type": "t", "operation": "o"}\n'


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "missing.py"], "missing.py: no such file; give the path to a .py file"),
        (["--task", "tasks/raises.py"], "raised ValueError: broken on purpose on import (line 1)"),
        (["--task", "tasks/nothing.py"], "the file defines none tasks; name one"),
        (["--task", "tasks/two.py"], "the file defines 2 tasks; name one"),
        (["--task", "tasks/two.py:C"], "the module has no 'C'"),
        (["--task", "tasks/noname.py"], "its name '' must be text"),
        (["--task", "tasks/builtin-name.py"], "the name 'arithmetic' is a built-in task's"),
        (["--task", "tasks/none.py"], "task none made a NoneType, not a grpo_lab.tasks.Problem"),
        (["--task", "tasks/tiny-space.py"], "task tiny gave only 1 distinct problems"),
        (["--task", "tasks/conflict.py"], "came with two answers"),
        (["--task", "tasks/int-answer.py"], "a problem's answer is a int"),
        (["--task", "tasks/escape.py"], "holds the control character U+001B"),
        (["--task", "tasks/overlap.py"], "put 1 problems of its evaluation suite into its training set"),
        (["--task", "no_such_module:T"], "no module no_such_module"),
        (["--task", "nonsense"], "is neither a .py file, a module:NAME, nor an installed task"),
        (["--task", ""], "--task is empty"),
        (["--task", str(EXAMPLE), "--min_num", "3"], "--min_num and --max_num are the built-in arithmetic's"),
        (["--task", "mixed", "--dataset_type", "small_numbers"], "disagree"),
        (["--task", str(EXAMPLE), "--reward", "tasks/rewards.py:VALUE"], "int is not a function"),
        (["--task", str(EXAMPLE), "--reward", "tasks/rewards.py"], "nor module:function or FILE.py:function"),
    ],
)
def test_a_bad_task_is_one_line_and_writes_nothing(isolated, args, message):
    folder = isolated / "tasks"
    folder.mkdir()
    for name, text in BAD_TASKS.items():
        (folder / name).write_text(text)
    (folder / "s.jsonl").write_text(SUITE_ROW)
    result = call("run", *args, *SMALL, "--hypothesis", "h")
    assert result.returncode == 2, result
    (line,) = result.stderr.splitlines()
    assert line.startswith("grpo-lab: error: ") and message in line, line
    assert not (isolated / "grpo_lab.db").exists() and not (isolated / "runs").exists()


REWARDS = textwrap.dedent("""
    def nan(completions, **_):
        return [float("nan")] * len(completions)

    def short(completions, **_):
        return [1.0]

    def text(completions, **_):
        return ["good"] * len(completions)
""")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("reward", "message"),
    [("nan", "returned nan; a reward is a finite number per completion"),
     ("short", "returned 1 values for 16 completions"),
     ("text", "returned 'good'")],
)  # fmt: skip
def test_a_reward_that_misbehaves_mid_training_fails_the_run_with_the_reason(isolated, cli, reward, message):
    (isolated / "bad_rewards.py").write_text(REWARDS)
    proc = cli("run", *SMALL, "--max_steps", "2", "--reward", f"binary+bad_rewards.py:{reward}", "--hypothesis", "h")
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    ((status, error, results),) = sql_rows(isolated / "grpo_lab.db",
                                           "SELECT status, error, (SELECT count(*) FROM result) FROM run")  # fmt: skip
    assert status == "failed" and error.startswith("RewardError: the reward") and message in error
    assert results > 0  # the evaluation before training is kept
