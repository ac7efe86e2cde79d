"""Regenerate the built-in ``tiny-arith`` model (grpo_lab/builtin/tiny-arith).

A Qwen2-architecture causal LM (hidden 128, 2 layers, 0.54M parameters) with a character-level
tokenizer, given a short supervised pass on synthetic text so that it starts partially competent,
as an instruct model does: ``Calculate: a op b = result<eos>`` with operands 0-20, plus a little
counting and comparison so that mixed runs have reward variance too. The loss covers the answer
and <eos> only. No problem of a built-in evaluation suite is ever in this text (suites.reserved_prompts),
so the model's suite scores, before and after GRPO, are on problems it has never been trained on.
The shipped checkpoint is the reference (models.TINY_SHA256 pins it); rerunning this on another
machine may differ in the last bits, so runs record the checkpoint's SHA-256.

    python scripts/build_tiny_model.py [--steps 400] [--out grpo_lab/builtin/tiny-arith]
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch
from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

from grpo_lab import tasks
from grpo_lab.models import BUILTIN_DIR, TINY, build_char_tokenizer, weights_checksum
from grpo_lab.suites import reserved_prompts


def sample_problem(rng: random.Random) -> tasks.Problem:
    """A random bootstrap problem that is not in any built-in suite."""
    while True:
        problem = _draw(rng)
        if problem.prompt not in reserved_prompts():
            return problem


def _draw(rng: random.Random) -> tasks.Problem:
    kind = rng.random()
    if kind < 0.8:
        return tasks.arithmetic_problem(rng.randint(0, 20), rng.choice(tasks.OPS), rng.randint(0, 20))
    if kind < 0.9:
        return tasks.counting_problem(rng.choice(tasks.COUNT_WORDS), rng.randint(*tasks.COUNT_RANGE))
    return tasks.comparison_problem(rng.randint(0, 20), rng.randint(0, 20))


def batch(tokenizer, problems: list[tasks.Problem]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids, attention mask, and labels that score only the answer and <eos>."""
    rows, labels = [], []
    for p in problems:
        prompt = tokenizer(p.prompt)["input_ids"]
        answer = tokenizer(p.answer)["input_ids"] + [tokenizer.eos_token_id]
        rows.append(prompt + answer)
        labels.append([-100] * len(prompt) + answer)
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    lab = torch.tensor([r + [-100] * (width - len(r)) for r in labels])
    return ids, mask, lab


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch_size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=BUILTIN_DIR / TINY)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    rng = random.Random(args.seed)
    tokenizer = build_char_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = Qwen2ForCausalLM(config)
    print(f"parameters: {sum(p.numel() for p in model.parameters()):,}")
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warmup = args.steps // 10
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
    model.train()
    t0 = time.time()
    for step in range(args.steps):
        ids, mask, labels = batch(tokenizer, [sample_problem(rng) for _ in range(args.batch_size)])
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {loss.item():.4f}  {time.time() - t0:.0f}s")

    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.eos_token_id
    )
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    print(f"saved {args.out}  sha256 {weights_checksum(args.out)}")


if __name__ == "__main__":
    main()
