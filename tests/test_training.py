"""Real GRPO steps on the built-in tiny model (a few seconds each); nothing is mocked."""

import re

import pytest
import torch

from grpo_lab import evaluation, models, rewards, tasks, training
from grpo_lab.config import RunConfig
from grpo_lab.errors import GrpoLabError
from grpo_lab.rewards import binary_reward

TINY = models.resolve("tiny-arith")


class Recorder(training.TrainingListener):
    def __init__(self):
        self.begin, self.steps, self.samples = None, [], []

    def on_train_begin(self, total_steps):
        self.begin = total_steps

    def on_step(self, step, metrics):
        self.steps.append((step, metrics))

    def on_samples(self, step, samples):
        self.samples.extend(samples)


def quick_train(tmp_path, **overrides):
    values = dict(
        model_name="tiny-arith",
        n_samples=32,
        batch_size=16,
        num_generations=4,
        learning_rate=5e-5,
        max_steps=2,
        threads=1,
    )
    values.update(overrides)
    config = RunConfig(**values)
    torch.set_num_threads(config.threads)
    tokenizer = models.load_tokenizer(TINY.path)
    model = models.load_model(TINY.path)
    problems = tasks.generate_problems(
        config.dataset_type, config.n_samples, config.min_num, config.max_num, config.seed
    )
    rec = Recorder()
    trained, seconds = training.train(config, model, tokenizer, tasks.to_dataset(problems), str(tmp_path / "out"), rec)
    assert seconds > 0
    return trained, tokenizer, rec


def params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_grpo_args_map_the_seed_onto_trl(tmp_path):
    c = RunConfig(
        model_name="tiny-arith",
        batch_size=64,
        num_generations=8,
        learning_rate=1e-5,
        temperature=0.9,
        epochs=7,
        beta=0.2,
        max_completion_length=12,
        seed=3,
    )
    a = training.grpo_args(c, str(tmp_path))
    assert (a.per_device_train_batch_size, a.num_generations, a.learning_rate, a.temperature) == (64, 8, 1e-5, 0.9)
    assert (a.num_train_epochs, a.beta, a.max_completion_length, a.seed, a.max_steps) == (7, 0.2, 12, 3, -1)
    assert (a.loss_type, a.scale_rewards, a.warmup_steps, a.weight_decay, a.max_grad_norm) == (
        "grpo",
        "group",
        0.1,
        0.01,
        1.0,
    )
    assert a.optim == "adamw_torch" and a.logging_steps == 1 and a.save_strategy == "no"
    assert not a.bf16 and not a.gradient_checkpointing and a.use_cpu  # CPU
    assert a.run_name == c.exp_name and not a.use_vllm


def test_device_args_use_bf16_and_checkpointing_only_on_a_gpu_that_has_them():
    assert training.device_args(cuda=True, bf16_supported=True) == {
        "use_cpu": False,
        "bf16": True,
        "gradient_checkpointing": True,
    }
    assert training.device_args(cuda=True, bf16_supported=False)["bf16"] is False  # pre-Ampere: fp32
    assert training.device_args(cuda=False, bf16_supported=True) == {
        "use_cpu": True,
        "bf16": False,
        "gradient_checkpointing": False,
    }


def test_use_vllm_without_vllm_or_a_gpu_is_a_clear_error(monkeypatch):
    from grpo_lab.errors import ConfigError

    with pytest.raises(ConfigError, match="--use_vllm needs vLLM, which is not installed here: pip install vllm"):
        RunConfig(model_name="tiny-arith", use_vllm=True)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: object() if name == "vllm" else None)
    config = RunConfig(model_name="tiny-arith", use_vllm=True)
    assert "--use_vllm" in config.command_args()
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="--use_vllm needs a CUDA GPU"):
            training.check_device(config)


def test_each_completion_is_scored_against_its_own_prompts_answer(tmp_path, monkeypatch):
    """A shuffled dataset, 4 prompts per batch: every reward call pairs prompt i with answer i."""
    seen = []

    def checking_reward(prompts, completions, answer, task_type, **kwargs):
        assert len(prompts) == len(completions) == len(answer) == 16  # batch_size completions per step
        for prompt, ans in zip(prompts, answer, strict=True):
            a, op, b = re.fullmatch(r"Calculate: (\d+) ([+*-]) (\d+) = ", prompt).groups()
            assert ans == str(tasks.compute(int(a), op, int(b))), (prompt, ans)
        seen.append(list(prompts))
        return binary_reward(completions, answer=answer, task_type=task_type)

    checking_reward.__name__ = "binary_reward"
    monkeypatch.setitem(rewards.REWARDS, "binary", checking_reward)
    quick_train(tmp_path, max_steps=3)
    assert len(seen) == 3
    for batch in seen:
        assert len(set(batch)) == 4  # 16 completions / 4 generations = 4 prompts
        assert all(batch.count(p) == 4 for p in set(batch))  # each prompt num_generations times


def test_training_changes_the_parameters_and_reports_metrics(tmp_path):
    before = params(models.load_model(TINY.path))
    model, tokenizer, rec = quick_train(tmp_path, max_steps=2)
    after = params(model)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert rec.begin == 2 and [s for s, _ in rec.steps] == [1, 2]
    metrics = rec.steps[-1][1]
    for key in ("reward", "reward_std", "frac_reward_zero_std", "kl", "loss", "grad_norm", "entropy", "learning_rate"):
        assert key in metrics
    assert rec.samples and {s.step for s in rec.samples} == {1, 2}
    assert all(s.reward in (1.0, -1.0) for s in rec.samples)
    # the final model and tokenizer are saved where they can be trained or evaluated further
    saved = tmp_path / "out"
    assert (saved / "model.safetensors").exists() and (saved / "tokenizer.json").exists()
    assert (
        models.load_tokenizer(str(saved)).decode(tokenizer("Calculate: 1 + 2 = ")["input_ids"]) == "Calculate: 1 + 2 = "
    )


def test_zero_learning_rate_changes_nothing(tmp_path):
    before = params(models.load_model(TINY.path))
    model, _, _ = quick_train(tmp_path, learning_rate=0.0, max_steps=2)
    after = params(model)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_beta_zero_has_no_kl_and_beta_positive_does(tmp_path):
    _, _, rec0 = quick_train(tmp_path / "a", beta=0.0, max_steps=1)
    _, _, rec1 = quick_train(tmp_path / "b", beta=0.1, max_steps=1)
    assert "kl" not in rec0.steps[-1][1]
    assert "kl" in rec1.steps[-1][1]


def test_epochs_set_the_number_of_steps(tmp_path):
    # 32 problems / 4 prompts per step = 8 steps per epoch
    _, _, rec = quick_train(tmp_path, max_steps=None, epochs=2, n_samples=16)
    assert rec.begin == 8 and rec.steps[-1][0] == 8


def test_max_completion_length_caps_generations(tmp_path):
    _, _, rec = quick_train(tmp_path, max_completion_length=1, max_steps=1)
    assert rec.steps[-1][1]["completions/max_length"] <= 1
    assert rec.steps[-1][1]["completions/clipped_ratio"] > 0


def test_temperature_controls_diversity(tmp_path):
    _, _, cold = quick_train(tmp_path / "cold", temperature=0.01, max_steps=2, learning_rate=0.0)
    # T 1.0, not higher: at 2.0 this weak model's samples are all wrong, which is zero reward std again
    _, _, hot = quick_train(tmp_path / "hot", temperature=1.0, max_steps=2, learning_rate=0.0)
    zero_std = lambda rec: sum(m["frac_reward_zero_std"] for _, m in rec.steps) / len(rec.steps)  # noqa: E731
    assert zero_std(cold) == 1.0  # near-greedy sampling: every completion of a prompt is the same
    assert zero_std(hot) < zero_std(cold)


def test_same_seed_same_training_and_greedy_results(tmp_path):
    probe = tasks.generate_problems("arithmetic", 60, seed=9)
    outputs = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        model, tokenizer, rec = quick_train(tmp_path / name, seed=seed, max_steps=2, learning_rate=1e-3)
        result = evaluation.evaluate(model, tokenizer, probe, "probe")
        outputs.append(([m["reward"] for _, m in rec.steps], [p.completion for p in result.predictions], params(model)))
    (ra, ca, pa), (rb, cb, pb), (_, _, pc) = outputs
    assert ra == rb and ca == cb
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert any(not torch.equal(pa[k], pc[k]) for k in pa)


@pytest.mark.parametrize("reward", ["binary", "partial"])
def test_reward_flag_picks_the_reward_function(tmp_path, reward):
    _, _, rec = quick_train(tmp_path, reward=reward, max_steps=1)
    assert f"rewards/{reward}_reward/mean" in rec.steps[-1][1]


SAVE_UNDER_A_FULL_DISK = """
import resource, signal, sys
from grpo_lab import models, training
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
path = models.tiny_path()
model, tokenizer = models.load_model(str(path)), models.load_tokenizer(str(path))
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    training.save_marked(sys.argv[1], model.save_pretrained, tokenizer.save_pretrained)
except Exception as exc:  # safetensors raises its own error
    print("failed:", exc)
"""


def test_a_model_that_cannot_be_written_is_marked_and_never_loads_as_a_run_model(tmp_path):
    """config.json fits under the limit and the weights do not: before, that left a folder that loaded as a
    model and crashed `eval --model_name run:ID`; now the folder says the save did not finish, and run:ID
    refuses it in one line."""
    import json
    import subprocess
    import sys

    from grpo_lab.runner import resolve_model
    from grpo_lab.store.db import Run, Store

    out = tmp_path / "runs" / "abcd1234"
    proc = subprocess.run([sys.executable, "-c", SAVE_UNDER_A_FULL_DISK, str(out)], capture_output=True, text=True)
    assert proc.stdout.startswith("failed:") and "File too large" in proc.stdout, proc.stdout + proc.stderr
    assert training.model_incomplete(out) and (out / "config.json").exists()
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    store.create_run(Run(id="abcd1234", status="failed", started_at="2026-01-01T00:00:00+00:00", host="h",
                         model_name="tiny-arith", output_dir=str(out), config=json.dumps({})))  # fmt: skip
    with pytest.raises(GrpoLabError, match="saved model in .* is incomplete"):
        resolve_model("run:abcd1234", store)


def test_a_saved_model_is_whole_and_unmarked(tmp_path):
    path = models.tiny_path()
    model, tokenizer = models.load_model(str(path)), models.load_tokenizer(str(path))
    out = tmp_path / "out"
    training.save_marked(str(out), model.save_pretrained, tokenizer.save_pretrained)
    assert {"config.json", "model.safetensors", "tokenizer_config.json"} <= {p.name for p in out.iterdir()}
    assert not training.model_incomplete(out) and models.resolve(str(out)).path == str(out)
