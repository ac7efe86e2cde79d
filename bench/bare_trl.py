"""Baseline for bench/overhead.py: the same GRPO training as `grpo-lab run`, with nothing but TRL.

Uses grpo-lab's problems and reward function (pure data and arithmetic) but builds GRPOConfig and a
plain GRPOTrainer by hand: no listener, no store, no progress bar. Prints the training phase's wall time
(trainer construction, train, save), the same span that grpo-lab records as train_seconds.
"""

import sys
import time

import torch
from trl import GRPOConfig, GRPOTrainer

from grpo_lab import models, tasks
from grpo_lab.rewards import binary_reward


def main(steps: int, out: str) -> None:
    torch.set_num_threads(1)
    path = str(models.tiny_path())
    tokenizer = models.load_tokenizer(path)
    model = models.load_model(path)
    problems = tasks.generate_problems("arithmetic", 256, seed=42)
    args = GRPOConfig(
        output_dir=out, per_device_train_batch_size=64, num_generations=8, learning_rate=5e-5, temperature=0.7,
        num_train_epochs=50, max_steps=steps, beta=0.1, max_completion_length=16, seed=42, data_seed=42,
        loss_type="grpo", scale_rewards="group", warmup_steps=0.1, weight_decay=0.01, max_grad_norm=1.0,
        optim="adamw_torch", logging_steps=1, save_strategy="no", report_to=[], bf16=False,
        gradient_checkpointing=False, use_cpu=True, disable_tqdm=True, remove_unused_columns=False,
    )  # fmt: skip
    started = time.perf_counter()
    trainer = GRPOTrainer(model=model, reward_funcs=binary_reward, args=args,
                          train_dataset=tasks.to_dataset(problems), processing_class=tokenizer)  # fmt: skip
    trainer.train()
    trainer.save_model(out)
    tokenizer.save_pretrained(out)
    print(f"TRAIN_SECONDS {time.perf_counter() - started:.4f}")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
