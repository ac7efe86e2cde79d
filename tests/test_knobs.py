"""The GRPO settings researchers vary, as flags: each one reaches TRL (read back from the trainer TRL built, not
only from grpo-lab's record), each refusal is one line before anything is written, and --trl reaches any other
GRPOConfig field, checked against the installed TRL."""

from __future__ import annotations

import json
import re

import pytest
import torch
from conftest import QUICK_RUN, call, sql_rows

from grpo_lab import models, tasks, training
from grpo_lab.config import LOSS_TYPES, SCHEDULERS, SEED_GRPO, RunConfig
from grpo_lab.errors import GrpoLabError

TINY = models.resolve("tiny-arith")
SMALL = {"model_name": "tiny-arith", "n_samples": 32, "batch_size": 16, "num_generations": 4, "max_steps": 2,
         "threads": 1}  # fmt: skip


def trainer_for(tmp_path, **flags):
    """The GRPOTrainer a run with these flags gets (built as a run builds it), after one optimizer step, so that its
    optimizer and scheduler exist."""
    config = RunConfig(**{**SMALL, **flags})
    torch.set_num_threads(1)
    problems = tasks.generate_problems("arithmetic", config.n_samples, seed=config.seed)
    trainer = training.build_trainer(config, models.load_model(TINY.path), models.load_tokenizer(TINY.path),
                                     tasks.to_dataset(problems), str(tmp_path / "out"))  # fmt: skip
    trainer.args.max_steps = 1
    trainer.train()
    return trainer


# Each knob, a value other than the seed's, and how to read what TRL did with it.
KNOBS = {
    "loss_type": ("dr_grpo", lambda t: t.loss_type),
    "scale_rewards": ("none", lambda t: t.scale_rewards),
    "importance_sampling_level": ("sequence", lambda t: t.importance_sampling_level),
    "epsilon": (0.1, lambda t: t.epsilon_low),
    "epsilon_high": (0.28, lambda t: t.epsilon_high),
    "num_iterations": (2, lambda t: t.num_iterations),
    "mask_truncated_completions": (True, lambda t: t.mask_truncated_completions),
    "top_p": (0.9, lambda t: t.generation_config.top_p),
    "top_k": (20, lambda t: t.generation_config.top_k),
    "min_p": (0.05, lambda t: t.generation_config.min_p),
    "repetition_penalty": (1.3, lambda t: t.generation_config.repetition_penalty),
    "lr_scheduler_type": ("cosine", lambda t: type(t.lr_scheduler).__name__ == "LambdaLR" and t.args.lr_scheduler_type),
    "warmup": (3, lambda t: t.args.get_warmup_steps(100)),
    "weight_decay": (0.05, lambda t: {g["weight_decay"] for g in t.optimizer.param_groups} - {0.0}),
    "max_grad_norm": (0.5, lambda t: t.args.max_grad_norm),
}
EXPECTED = {"lr_scheduler_type": "cosine", "weight_decay": {0.05}}


def test_every_knob_is_a_flag_with_the_seeds_default():
    assert set(KNOBS) == set(SEED_GRPO)
    config = RunConfig(**SMALL)
    assert {k: getattr(config, k) for k in SEED_GRPO} == SEED_GRPO
    assert not config.differs_from_seed() and config.trl == {}


@pytest.mark.slow
@pytest.mark.parametrize("knob", list(KNOBS))
def test_each_knob_reaches_trl(tmp_path, knob):
    value, read = KNOBS[knob]
    trainer = trainer_for(tmp_path, **{knob: value})
    assert read(trainer) == EXPECTED.get(knob, value)
    if knob != "warmup":  # the others keep the seed's values
        assert trainer.loss_type == ("dr_grpo" if knob == "loss_type" else "grpo")


def test_loss_types_are_every_one_trl_offers():
    from trl import GRPOConfig

    help_text = next(f for f in __import__("dataclasses").fields(GRPOConfig) if f.name == "loss_type").metadata["help"]
    offered = re.search(r"Supported values are (.*?)\.\s", help_text)[1]
    assert set(LOSS_TYPES) == set(re.findall(r"'(\w+)'", offered))


def test_schedulers_are_transformers_own():
    from transformers.trainer_utils import SchedulerType

    assert set(SCHEDULERS) <= {s.value for s in SchedulerType}


def test_trl_fields_reach_trl_typed_and_the_record_reruns_them(tmp_path):
    config = RunConfig(**SMALL, trl=["delta=1.5", "top_entropy_quantile=0.5", "steps_per_generation=2",
                                     'lr_scheduler_kwargs={"min_lr_rate": 0.1}'],
                       lr_scheduler_type="cosine_with_min_lr")  # fmt: skip
    assert config.trl == {"delta": 1.5, "top_entropy_quantile": 0.5, "steps_per_generation": 2,
                          "lr_scheduler_kwargs": {"min_lr_rate": 0.1}}  # fmt: skip
    args = training.grpo_args(config, str(tmp_path))
    assert (args.delta, args.top_entropy_quantile, args.steps_per_generation) == (1.5, 0.5, 2)
    assert args.lr_scheduler_kwargs == {"min_lr_rate": 0.1}
    command = config.command_args()
    i = command.index("--trl")
    assert command[i : i + 2] == ["--trl", "delta=1.5"]
    assert "lr_scheduler_kwargs=" + json.dumps({"min_lr_rate": 0.1}) in command


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"trl": ["detla=1"]}, "GRPOConfig has no such field; did you mean delta"),
        ({"trl": ["per_device_train_batch_size=3"]}, "grpo-lab sets it; use --batch_size"),
        ({"trl": ["loss_type=dapo"]}, "grpo-lab sets it; use --loss_type"),
        ({"trl": ["beta=0.2"]}, "grpo-lab sets it; use --beta"),
        ({"trl": ["n_samples=3"]}, "that is grpo-lab's own flag; use --n_samples"),
        ({"trl": ["delta=abc"]}, "--trl delta=abc: float or null expected"),
        ({"trl": ["steps_per_generation=1.5"]}, "int or null expected"),
        ({"trl": ["delta"]}, "write KEY=VALUE"),
        ({"trl": ["delta=1", "delta=2"]}, "--trl delta is given twice"),
        ({"loss_type": "ppo"}, "--loss_type 'ppo' is not one of"),
        ({"scale_rewards": "std"}, "--scale_rewards 'std' is not one of"),
        ({"importance_sampling_level": "batch"}, "is not one of: token, sequence"),
        ({"epsilon": -0.1}, "--epsilon must be at least 0"),
        ({"epsilon": 1.5}, "--epsilon must be at most 1"),
        ({"epsilon_high": -1.0}, "--epsilon_high must be at least 0"),
        ({"num_iterations": 0}, "--num_iterations must be at least 1"),
        ({"top_p": 0.0}, "--top_p must be above 0"),
        ({"top_p": 1.5}, "--top_p must be at most 1"),
        ({"top_k": -1}, "--top_k must be at least 0"),
        ({"min_p": 1.5}, "--min_p must be at most 1"),
        ({"repetition_penalty": 0.0}, "--repetition_penalty must be above 0"),
        ({"lr_scheduler_type": "reduce_lr_on_plateau"}, "is not one of"),
        ({"lr_scheduler_type": "cosine_with_min_lr"}, "needs min_lr or min_lr_rate: add --trl"),
        ({"lr_scheduler_type": "warmup_stable_decay"}, "needs num_decay_steps"),
        ({"warmup": 1.5}, "--warmup 1.5: give a fraction"),
        ({"warmup": -0.1}, "--warmup must be at least 0"),
        ({"weight_decay": -1.0}, "--weight_decay must be at least 0"),
        ({"max_grad_norm": -1.0}, "--max_grad_norm must be at least 0"),
        ({"mask_truncated_completions": "yes"}, "is a switch"),
    ],
)
def test_each_refusal_is_one_line_before_anything_runs(flags, message):
    with pytest.raises(GrpoLabError, match=re.escape(message)):
        RunConfig(**{**SMALL, **flags})


def test_a_combination_trl_refuses_is_refused_before_the_run(tmp_path):
    config = RunConfig(**SMALL, trl=["auto_find_batch_size=true"])
    with pytest.raises(GrpoLabError, match="TRL refuses this configuration: auto_find_batch_size is not supported"):
        training.check_with_trl(config)


@pytest.mark.slow
def test_the_knobs_of_the_issue_train_and_the_record_agrees_with_what_trl_received(isolated, cli):
    """run --loss_type dr_grpo --scale_rewards none --epsilon_high 0.28 --num_iterations 2: the configuration the
    store holds and the GRPOConfig TRL was given (saved by the trainer as training_args.bin) agree on every knob;
    compare shows what changed against a run of the seed's settings."""
    knobs = ["--loss_type", "dr_grpo", "--scale_rewards", "none", "--epsilon_high", "0.28", "--num_iterations", "2"]
    proc = cli("run", *QUICK_RUN, *knobs, "--hypothesis", "Dr. GRPO", "--output_dir", "knobs")
    assert proc.returncode == 0, proc.stderr
    assert cli("run", *QUICK_RUN, "--hypothesis", "the seed's", "--output_dir", "seed").returncode == 0
    db = isolated / "grpo_lab.db"
    ((config, name),) = sql_rows(db, "SELECT config, exp_name FROM run WHERE hypothesis = 'Dr. GRPO'")
    config = json.loads(config)
    received = torch.load(isolated / "knobs" / "training_args.bin", weights_only=False)
    names = {"warmup": "warmup_steps"}
    for knob in SEED_GRPO:
        assert config[knob] == getattr(received, names.get(knob, knob)), knob
    assert (config["loss_type"], config["scale_rewards"], config["epsilon_high"], config["num_iterations"]) == (
        "dr_grpo", "none", 0.28, 2)  # fmt: skip
    assert "_dr_grpo_scalenone_epsh0.28_mu2_" in name
    rows = json.loads(call("compare", "--format", "json", "--all-columns").stdout)
    assert {r["loss_type"] for r in rows} == {"dr_grpo", "grpo"}
    shown = call("compare", "--format", "plain").stdout.splitlines()
    header = shown[1].split()
    for knob in ("loss_type", "scale_rewards", "epsilon_high", "num_iterations"):
        assert knob in header, header
    where = json.loads(call("compare", "--where", "loss_type=dr_grpo and num_iterations>=2", "--format", "json").stdout)
    assert [r["name"] for r in where] == [name]


@pytest.mark.slow
def test_a_sweep_over_loss_types_runs(isolated, cli):
    proc = cli("sweep", "--grid", "loss_type=grpo,dr_grpo,dapo", "--set", "model_name=tiny-arith", "--set",
               "n_samples=32", "--set", "batch_size=16", "--set", "num_generations=4", "--set", "max_steps=1",
               "--set", "eval_samples=10", "--set", "eval_suite=none", "--seeds", "1", "--hypothesis", "loss",
               "--wandb", "disabled", "--name", "losses")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = sql_rows(isolated / "grpo_lab.db", "SELECT arm, status, json_extract(config, '$.loss_type') FROM run")
    assert sorted(rows) == [("loss_type=dapo", "finished", "dapo"), ("loss_type=dr_grpo", "finished", "dr_grpo"),
                            ("loss_type=grpo", "finished", "grpo")]  # fmt: skip
