"""Build the built-in ``tiny-arith-2`` model (grpo_lab/builtin/tiny-arith-2) bit for bit.

A Qwen2-architecture causal LM (hidden 128, 2 layers, 0.54M parameters) with a character-level
tokenizer, given a short supervised pass on synthetic text so that it starts partially competent,
as an instruct model does: ``Calculate: a op b = result<eos>`` with operands 0-20, plus a little
counting and comparison so that mixed runs have reward variance too. The loss covers the answer
and <eos> only. No problem of the v2 suites (arith-v2, mixed-v2: suites.reserved_prompts(V2_SUITES)) is ever in
this text, so the model's scores there, before and after GRPO, are on problems it was never trained on. Those
suites are uniform draws from the spaces the text is drawn from, so holding them out leaves no region of the
space unseen. (tiny-arith, built by this script's first version, held the v1 suites out instead: that carved
30 of the 36 `a + b` sums on 0-5, arith-v1's very_easy tier, out of everything it ever saw.)

What makes the build the same on every machine is pinned in build(), before torch loads (PINNED_ENV):
- one thread for every library (torch intra- and inter-op, OpenMP, MKL), whatever the caller asks: with two, the
  float sums are split otherwise and the weights differ (a 4-step build: edbba406... with one, 6516220e... with two);
- MKL's matrix products on its COMPATIBLE code path (MKL_CBWR: SSE2 without the approximate rcpps/rsqrtps
  instructions, the one branch every x86-64 CPU runs, Intel's or AMD's). Unpinned, MKL picks its kernels by CPU
  (AVX-512 on one machine, AVX2 on another), and the 4-step build gives 70dce080... here; MKL_CBWR=AVX2 fell back
  to AUTO on this AMD EPYC (MKL_VERBOSE says so), so it would pin nothing across vendors;
- ATen's own kernels (sums, softmax, exp, norms) at the AVX2 level (ATEN_CPU_CAPABILITY=avx2; unpinned, torch
  picks AVX-512 where the CPU has it: ATen's scalar kernels give 64b493de...); oneDNN at most AVX2, although
  this build makes no oneDNN call in torch 2.13 (ONEDNN_VERBOSE shows none);
- deterministic algorithms, eager attention (plain matrix products and a softmax), AdamW and gradient clipping
  without foreach kernels, and the data order from Python's seeded Mersenne Twister.
It still depends on: an x86-64 CPU with AVX2 (the script refuses others: ARM has other kernels), and the versions
of torch (2.13.0 and the MKL it bundles), transformers (5.24.0: weight initialisation and the Qwen2 code) and
tokenizers, since other kernels or another initialisation give other weights. One thread and MKL's portable
path make it slow: about 7 minutes of one core.

    python scripts/build_tiny_model.py [--out grpo_lab/builtin/tiny-arith-2]
    python scripts/build_tiny_model.py --check   # build in a temporary folder; exit 1 unless it matches the pin
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

from grpo_lab import tasks
from grpo_lab.models import BUILTIN_DIR, TINY2, TINY2_SHA256, build_char_tokenizer, weights_checksum
from grpo_lab.suites import V2_SUITES, reserved_prompts

PINNED_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MKL_DYNAMIC": "FALSE",
    "MKL_CBWR": "COMPATIBLE",
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}


def sample_problem(rng: random.Random, reserved: frozenset[str]) -> tasks.Problem:
    """A random bootstrap problem that is not in a reserved suite."""
    while True:
        problem = _draw(rng)
        if problem.prompt not in reserved:
            return problem


def _draw(rng: random.Random) -> tasks.Problem:
    kind = rng.random()
    if kind < 0.8:
        return tasks.arithmetic_problem(rng.randint(0, 20), rng.choice(tasks.OPS), rng.randint(0, 20))
    if kind < 0.9:
        return tasks.counting_problem(rng.choice(tasks.COUNT_WORDS), rng.randint(*tasks.COUNT_RANGE))
    return tasks.comparison_problem(rng.randint(0, 20), rng.randint(0, 20))


def bootstrap_text(steps: int, batch_size: int, seed: int = 0) -> list[list[tasks.Problem]]:
    """Every batch the build trains on, in order (the tests read it to check that no reserved problem is in it)."""
    rng, reserved = random.Random(seed), reserved_prompts(V2_SUITES)
    return [[sample_problem(rng, reserved) for _ in range(batch_size)] for _ in range(steps)]


def batch(tokenizer, problems: list[tasks.Problem]):
    """Right-padded ids, attention mask, and labels that score only the answer and <eos>."""
    import torch

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


def train_step(model, tokenizer, problems: list[tasks.Problem]):
    """Accumulate the gradient of the mean answer-token loss over ``problems``; the loss.

    The batch is split by task type (arithmetic rows are about 25 characters, counting rows up to 80), so that
    short rows are not padded to the longest: the same loss as one padded batch, computed in a third of the time.
    """
    import torch

    parts = [[p for p in problems if p.task_type == kind] for kind in ("arithmetic", "comparison", "counting")]
    encoded = [batch(tokenizer, part) for part in parts if part]
    n_tokens = sum(int((labels != -100).sum()) for _, _, labels in encoded)
    total = torch.zeros(())
    for ids, mask, labels in encoded:
        logits = model(input_ids=ids, attention_mask=mask).logits
        loss = (
            torch.nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]),
                labels[:, 1:].reshape(-1),
                ignore_index=-100,
                reduction="sum",
            )
            / n_tokens
        )
        loss.backward()
        total += loss.detach()
    return total


def pin() -> None:
    """Set PINNED_ENV before torch loads (OpenMP, MKL and ATen read it once, when they start)."""
    if "torch" in sys.modules:
        sys.exit("torch was imported before the build could pin its threads and kernels; run this script on its own")
    os.environ.update(PINNED_ENV)


def check_machine() -> None:
    import torch

    if platform.machine().lower() not in ("x86_64", "amd64") or not torch.cpu._is_avx2_supported():
        sys.exit(f"this build is pinned to x86-64 with AVX2 (this machine: {platform.machine()}); "
                 "its weights would differ here")  # fmt: skip
    if torch.backends.cpu.get_cpu_capability() != "AVX2":
        sys.exit(f"torch runs its kernels at {torch.backends.cpu.get_cpu_capability()}, not the pinned AVX2; "
                 "was torch imported before this script set ATEN_CPU_CAPABILITY?")  # fmt: skip


def build(out: Path, steps: int, batch_size: int, lr: float, seed: int) -> str:
    """Train the model and save it (weights, tokenizer, generation config) to ``out``; its weights' SHA-256."""
    pin()
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    check_machine()
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
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
    config._attn_implementation = "eager"  # for the build only; loading the model later picks as usual
    model = Qwen2ForCausalLM(config)
    print(f"parameters: {sum(p.numel() for p in model.parameters()):,}")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, foreach=False)
    warmup = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
    model.train()
    t0 = time.time()
    for step, problems in enumerate(bootstrap_text(steps, batch_size, seed)):
        opt.zero_grad()
        loss = train_step(model, tokenizer, problems)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=False)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step:4d}  loss {loss.item():.4f}  {time.time() - t0:.0f}s", flush=True)

    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.eos_token_id
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return weights_checksum(out)


def usable_out(out: Path) -> bool:
    """A folder the build may write into: new, empty, or a model it rebuilds (never a link, a file, your notes)."""
    if out.is_symlink():
        return False
    if not out.exists():
        return True
    return out.is_dir() and (not any(out.iterdir()) or (out / "model.safetensors").is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch_size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=BUILTIN_DIR / TINY2)
    ap.add_argument("--check", action="store_true", help=f"build in a temporary folder and compare with {TINY2}'s pin")
    args = ap.parse_args()
    if args.check and (args.steps, args.batch_size, args.lr, args.seed) != (400, 128, 1e-3, 0):
        ap.error(f"--check rebuilds {TINY2} as pinned; leave --steps, --batch_size, --lr and --seed at their defaults")
    if not args.check and not usable_out(args.out):
        ap.error(f"--out {args.out} is not a new folder, an empty one, or a model folder to rebuild; name another")
    if not args.check:
        checksum = build(args.out, args.steps, args.batch_size, args.lr, args.seed)
        print(f"saved {args.out}  sha256 {checksum}")
        return
    with tempfile.TemporaryDirectory(prefix="tiny-arith-2-") as tmp:
        checksum = build(Path(tmp), args.steps, args.batch_size, args.lr, args.seed)
    print(f"sha256 {checksum}")
    if checksum != TINY2_SHA256:
        sys.exit(f"differs from the pinned {TINY2} sha256 {TINY2_SHA256}")
    print(f"matches the pinned {TINY2} sha256")


if __name__ == "__main__":
    main()
