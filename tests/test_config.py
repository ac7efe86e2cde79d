import pytest

from grpo_lab.config import RunConfig, load_presets, preset_values, resolve
from grpo_lab.errors import ConfigError


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
        ({"temperature": 0.0}, "--temperature must be above 0"),
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
