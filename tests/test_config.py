import re

import pytest

from grpo_lab.config import RunConfig, load_presets, preset_values, resolve
from grpo_lab.errors import ConfigError, GrpoLabError


def test_defaults_are_the_seeds():
    c = RunConfig()
    assert (c.dataset_type, c.n_samples, c.min_num, c.max_num) == ("arithmetic", 100, 0, 20)
    assert (c.batch_size, c.num_generations, c.learning_rate, c.temperature, c.epochs, c.beta) == (
        256,
        16,
        5e-6,
        0.7,
        50,
        0.1,
    )
    assert c.model_name == "Qwen/Qwen2-0.5B-Instruct"
    assert c.seed == 42
    assert c.exp_name == "grpo_arithmetic_b256_g16"
    assert c.tags == ["grpo", "canonical"]
    assert (c.reward, c.max_completion_length, c.max_steps) == ("binary", 16, None)


def test_plan_counts_prompts_not_completions():
    c = RunConfig(n_samples=100, batch_size=256, num_generations=16, epochs=50)
    assert c.prompts_per_step == 16
    assert c.steps_per_epoch == 6  # TRL drops the incomplete last batch
    assert c.total_steps == 300
    assert RunConfig(max_steps=7).total_steps == 7
    plan = dict(RunConfig().plan())
    assert plan["prompts per step"].startswith("16")
    assert plan["total steps"].startswith("300")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 100}, "not divisible by --num_generations 16; try --batch_size 96"),
        ({"num_generations": 1, "batch_size": 16}, "at least 2"),
        ({"dataset_type": "words"}, "not one of"),
        ({"reward": "dense"}, "not one of"),
        ({"n_samples": 0}, "--n_samples must be at least 1"),
        ({"n_samples": 5000}, "exceeds the 1199 distinct arithmetic problems that operands 0-20 allow outside"),
        ({"n_samples": 10}, "fewer than the 16 prompts one step takes"),
        ({"min_num": 9, "max_num": 3}, "larger than --max_num"),
        ({"dataset_type": "small_numbers", "max_num": 20}, "small_numbers uses the range"),
        ({"learning_rate": -1.0}, "--learning_rate"),
        ({"temperature": 0.0}, "--temperature must be at least 0.0001"),
        ({"beta": -0.1}, "--beta"),
        ({"epochs": 0}, "--epochs"),
        ({"max_steps": 0}, "--max_steps"),
        ({"threads": 0}, "--threads"),
        ({"max_completion_length": 0}, "--max_completion_length"),
    ],
)
def test_bad_values_raise_config_error(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        RunConfig(**kwargs)


def test_warnings_encode_the_seeds_learnings():
    assert RunConfig().warnings() == []
    messages = RunConfig(beta=0, num_generations=4, batch_size=64, temperature=0.3).warnings()
    assert len(messages) == 3
    assert "KL penalty" in messages[0] and "reward std" in messages[1] and "identical" in messages[2]


def test_presets_fill_in_and_explicit_flags_win():
    c = resolve({"learning_rate": 1e-4}, "cpu-quick")
    assert c.model_name == "tiny-arith" and c.learning_rate == 1e-4
    assert resolve({}, "mixed_bootstrap").batch_size == 240


def test_every_preset_is_valid():
    for name in load_presets():
        values = preset_values(name)
        if values.get("model_name", "").startswith("Qwen"):
            continue
        RunConfig(**values)


def test_the_seeds_recipes_are_presets():
    assert {
        "break_87_barrier",
        "quick_overfit",
        "baseline_87_percent",
        "expanded_dataset",
        "high_temp_diversity",
        "mixed_bootstrap",
        "cpu-quick",
        "cpu-smollm2",
    } <= set(load_presets())


def test_cpu_study_is_the_regime_the_v3_search_chose_with_arith_v2_held_out():
    config = resolve({}, "cpu-study")
    assert (config.model_name, config.learning_rate, config.max_steps, config.eval_suite) == (
        "tiny-arith-2", 2e-4, 240, "arith-v2")  # fmt: skip
    assert set(config.reserve) == {"arith-v2", "mixed-v2"} and config.exp_name == "cpu_study"
    assert resolve({"beta": 0.0}, "cpu-study").exp_name == "cpu_study_beta0"


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        resolve({}, "nope")


def test_command_args_reproduce_the_config():
    from grpo_lab.cli import resolve_config

    c = RunConfig(dataset_type="mixed", n_samples=120, tags=["a", "b"], max_steps=3)
    args = c.command_args()
    options = dict(zip(args[::2], args[1::2], strict=True))
    parsed = RunConfig(
        **{
            k[2:]: type(getattr(c, k[2:]))(v) if not isinstance(getattr(c, k[2:]), list) else v
            for k, v in options.items()
        }
    )
    assert parsed == c
    assert resolve_config(None, {"tags": ["x,y", "z"]}).tags == ["x", "y", "z"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": float("inf")}, "--temperature must be a finite number (got inf)"),
        ({"temperature": float("nan")}, "--temperature must be a finite number (got nan)"),
        ({"temperature": 1e-320}, "--temperature must be at least 0.0001"),
        ({"temperature": 101.0}, "--temperature must be at most 100 (got 101.0)"),
        ({"learning_rate": float("inf")}, "--learning_rate must be a finite number"),
        ({"learning_rate": float("-inf")}, "--learning_rate must be a finite number"),
        ({"beta": float("inf")}, "--beta must be a finite number"),
        ({"beta": float("nan")}, "--beta must be a finite number"),
        ({"seed": -1}, "--seed must be at least 0 (got -1)"),
        ({"seed": 2**32}, "--seed must be at most 4294967295"),
        ({"threads": 10**11}, "--threads must be at most 1024"),
        ({"max_steps": 10**23}, "--max_steps must be at most 2147483647"),
        ({"epochs": 2**31}, "--epochs must be at most 2147483647"),
        ({"batch_size": 2**40, "num_generations": 2**39}, "--batch_size must be at most 2147483647"),
        ({"eval_samples": -1}, "--eval_samples must be at least 0"),
        ({"eval_batch_size": 10**23}, "--eval_batch_size must be at most"),
        ({"max_completion_length": 10**23}, "--max_completion_length must be at most"),
        ({"min_num": -(10**23)}, "--min_num must be at least -1000000000"),
        ({"max_num": 10**10}, "--max_num must be at most 1000000000"),
        ({"batch_size": "16"}, "--batch_size must be a whole number (got '16')"),
        ({"batch_size": True}, "--batch_size must be a whole number (got True)"),
        ({"learning_rate": "fast"}, "--learning_rate must be a number"),
        ({"model_name": 3}, "--model_name must be text"),
        ({"model_name": ""}, "--model_name is empty"),
        ({"model_name": "  "}, "--model_name is empty"),
        ({"model_name": "tiny\x1b[2J"}, "--model_name holds the control character U+001B"),
        ({"exp_name": ""}, "--exp_name is empty"),
        ({"exp_name": "a\nb"}, "--exp_name holds a line break"),
        ({"tags": ["x" * 65]}, "has 65 characters; WandB takes 64"),
        ({"tags": ["a\tb"]}, "--tags holds the control character U+0009"),
        ({"eval_suite": "/dev/zero.jsonl"}, "does not exist"),
        ({"output_dir": ""}, "--output_dir is empty"),
        ({"output_dir": "/proc/self/x"}, "cannot write in /proc/self"),
    ],
)
def test_values_that_make_no_sense_for_training_are_refused(kwargs, message):
    with pytest.raises(GrpoLabError, match=re.escape(message)):
        RunConfig(**kwargs)


def test_an_output_dir_never_replaces_files(tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "model.safetensors").write_text("a previous run's model")
    for path, message in ((tmp_path / "file", "is a file"), (tmp_path / "file" / "x", "is a file, not a folder"),
                          (tmp_path / "used", "already holds files")):  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            RunConfig(output_dir=str(path))
    (tmp_path / "empty").mkdir()
    assert RunConfig(output_dir=str(tmp_path / "empty")).output_dir == str(tmp_path / "empty")
    assert RunConfig(output_dir=str(tmp_path / "new" / "deeper")).output_dir


def test_a_suite_file_must_be_a_regular_file(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.jsonl")  # reading it would wait forever
    (tmp_path / "dir.jsonl").mkdir()
    for name in ("pipe.jsonl", "dir.jsonl"):
        with pytest.raises(GrpoLabError, match="is not a regular file"):
            RunConfig(eval_suite=str(tmp_path / name))


@pytest.mark.parametrize(
    ("explicit", "preset", "name"),
    [
        ({}, "cpu-quick", "cpu_quick"),
        ({"max_steps": 10}, "cpu-quick", "cpu_quick_steps10"),
        ({"beta": 0.0, "learning_rate": 1e-4}, "cpu-quick", "cpu_quick_lr0.0001_beta0"),
        ({"beta": 0.1, "n_samples": 500}, "cpu-quick", "cpu_quick"),  # the preset's own values change nothing
        ({"seed": 3, "tags": ["x"], "threads": 1, "eval_batch_size": 8}, "cpu-quick", "cpu_quick"),  # same experiment
        ({"max_steps": 8, "save_steps": 2, "save_total_limit": 3}, "cpu-quick", "cpu_quick_steps8"),  # saved, same run
        ({"max_steps": 8, "num_processes": 2}, "cpu-quick", "cpu_quick_steps8"),  # as `accelerate launch` names it
        ({"learning_rate": 1.0000001e-5}, "cpu-quick", "cpu_quick_lr1.0000001e-05"),  # not 1e-05's name
        ({"beta": 0.1234567}, "cpu-quick", "cpu_quick_beta0.1234567"),
        ({"dataset_type": "mixed", "n_samples": 300, "batch_size": 240}, "cpu-quick", "cpu_quick_mixed_n300_b240"),
        ({"temperature": 1.2}, "break_87_barrier", "break_87_barrier_t1.2"),  # a preset without exp_name
        ({}, None, "grpo_arithmetic_b256_g16"),
        ({"batch_size": 64, "reward": "partial"}, None, "grpo_arithmetic_b64_g16_partial"),
        ({"model_name": "Qwen/Qwen2-0.5B-Instruct", "max_num": 50}, None, "grpo_arithmetic_b256_g16_max50"),
        ({"model_name": "tiny-arith", "min_num": 5}, None, "grpo_arithmetic_b256_g16_min5_tiny-arith"),
        ({"exp_name": "mine", "beta": 0.0}, "cpu-quick", "mine"),
    ],
)
def test_default_names_tell_runs_apart(explicit, preset, name):
    assert resolve(explicit, preset).exp_name == name
