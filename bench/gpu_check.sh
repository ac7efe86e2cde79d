#!/usr/bin/env bash
# The GPU path, end to end, on a machine with a CUDA GPU and torch but no network:
#   1. installs the wheels bench/gpu_wheels.sh downloaded into .whl/ (no index, no dependencies resolved),
#   2. `grpo-lab run` on tiny-arith on CUDA for 20 steps (bf16 where supported, gradient checkpointing),
#   3. the same run through `accelerate launch --num_processes 1`,
#   4. `grpo-lab eval` of the trained model,
#   5. prints steps/s and before -> after accuracies, and writes gpu_check.log and gpu_check.json to $OUT
#      (or bench/out/gpu_check/).
# Run from anywhere: bash bench/gpu_check.sh. About 2-4 minutes after the machine is up.
# GPU_CHECK_ALLOW_CPU=1 runs it without a GPU (a dry run of everything but CUDA); PYTHON picks the interpreter,
# GPU_CHECK_WHEELS another wheel folder (e.g. one that bench/gpu_wheels.sh filled for the dry run's Python).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
OUTDIR=${OUT:-$ROOT/bench/out/gpu_check}
WORK=$(mktemp -d /tmp/gpu_check.XXXXXX)
SITE=${GPU_CHECK_SITE:-$WORK/site}
WHEELS=${GPU_CHECK_WHEELS:-$ROOT/.whl}
STEPS=${GPU_CHECK_STEPS:-20}
mkdir -p "$OUTDIR"
exec > >(tee "$OUTDIR/gpu_check.log") 2>&1
fail() { echo "GPU CHECK FAILED: $*" >&2; exit 1; }
trap 'echo "GPU CHECK FAILED at line $LINENO (exit $?)" >&2' ERR

echo "== machine"
date -u +%FT%TZ
nvidia-smi -L || [ "${GPU_CHECK_ALLOW_CPU:-0}" = 1 ] || fail "nvidia-smi found no GPU"
"$PY" --version

echo "== installing $(ls "$WHEELS"/*.whl 2>/dev/null | wc -l) wheels from $WHEELS into $SITE"
ls "$WHEELS"/*.whl >/dev/null 2>&1 || fail "no wheels in $WHEELS; run bash bench/gpu_wheels.sh first, and carry .whl"
"$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$WHEELS"/*.whl
export PYTHONPATH="$SITE:$ROOT"
export WANDB_MODE=disabled HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export GRPO_LAB_DB="$WORK/gpu_check.db" GRPO_LAB_CACHE="$WORK/cache"
cd "$WORK"  # runs/ and the store go here, not into the repo

"$PY" - <<'PY'
import os, torch, transformers, accelerate, trl, datasets, sqlmodel, grpo_lab
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), transformers {transformers.__version__}, "
      f"accelerate {accelerate.__version__}, trl {trl.__version__}, datasets {datasets.__version__}, "
      f"sqlmodel {sqlmodel.__version__}, grpo_lab from {os.path.dirname(grpo_lab.__file__)}")
if torch.cuda.is_available():
    print(f"GPU: {torch.cuda.get_device_name(0)}, bf16 supported: {torch.cuda.is_bf16_supported()}")
elif os.environ.get("GPU_CHECK_ALLOW_CPU") != "1":
    raise SystemExit("GPU CHECK FAILED: torch sees no CUDA device")
else:
    print("no CUDA device: dry run on CPU (GPU_CHECK_ALLOW_CPU=1)")
from grpo_lab.config import RunConfig
from grpo_lab.training import grpo_args

a = grpo_args(RunConfig(model_name="tiny-arith"), os.path.join(os.getcwd(), "probe"))
print(f"GRPOConfig here: bf16={a.bf16} gradient_checkpointing={a.gradient_checkpointing} use_cpu={a.use_cpu}")
PY

RUN=(run --preset cpu-quick --max_steps "$STEPS" --wandb disabled --tags gpu-check)
echo "== 1. grpo-lab run on tiny-arith, $STEPS steps"
"$PY" -m grpo_lab "${RUN[@]}" --exp_name gpu_direct --hypothesis "tiny-arith trains on CUDA with bf16"
echo "== 2. the same through accelerate launch --num_processes 1"
"$PY" -m accelerate.commands.launch --num_processes 1 --num_machines 1 --dynamo_backend no \
    -m grpo_lab "${RUN[@]}" --exp_name gpu_accelerate --hypothesis "the accelerate launcher path works on CUDA"
MODEL_RUN=$("$PY" -c "import sqlite3,os; print(sqlite3.connect(os.environ['GRPO_LAB_DB']).execute(
    \"SELECT id FROM run WHERE exp_name='gpu_direct'\").fetchone()[0])")
echo "== 3. grpo-lab eval of run $MODEL_RUN's trained model"
"$PY" -m grpo_lab eval --model_name "run:$MODEL_RUN" --suite arith-v1 --suite mixed-v1
echo "== 4. --use_vllm without vLLM is one clear line"
if "$PY" -c "import vllm" 2>/dev/null; then
    echo "vLLM is installed here; --use_vllm is exercised for 5 steps"
    "$PY" -m grpo_lab run --preset cpu-quick --max_steps 5 --wandb disabled --use_vllm --exp_name gpu_vllm \
        --hypothesis "vLLM colocate generation works"
else
    code=0
    "$PY" -m grpo_lab run --preset cpu-quick --max_steps 5 --wandb disabled --use_vllm --hypothesis h 2>vllm.err || code=$?
    cat vllm.err
    [ "$code" = 2 ] && grep -q "pip install vllm" vllm.err || fail "--use_vllm without vLLM exited $code"
fi

echo "== results"
"$PY" - "$OUTDIR/gpu_check.json" <<'PY'
import json, os, sqlite3, sys

import torch

db = sqlite3.connect(os.environ["GRPO_LAB_DB"])
out = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu", "torch": torch.__version__,
       "runs": {}}
pct = lambda x: "-" if x is None else f"{100 * x:.1f}%"
for run_id, name, kind, status, seconds in db.execute(
        "SELECT id, exp_name, kind, status, train_seconds FROM run ORDER BY started_at"):
    row = {"id": run_id, "kind": kind, "status": status, "accuracy": {}}
    for stage, split, correct, total in db.execute(
            "SELECT stage, split, correct, total FROM result WHERE run_id = ? AND dimension = 'overall'", (run_id,)):
        row["accuracy"].setdefault(split, {"before": None, "after": None})[stage] = correct / total
    line = f"{name:16} {status:9}"
    if kind == "train":
        steps = db.execute("SELECT count(*) FROM step WHERE run_id = ?", (run_id,)).fetchone()[0]
        rate = steps / seconds if seconds else None
        row.update(steps=steps, train_seconds=seconds, steps_per_s=rate)
        line += f" {steps} steps in {seconds:.1f} s = {rate:.2f} steps/s (training phase)" if rate else ""
    accs = [f"{split} {pct(a['before'])} -> {pct(a['after'])}" for split, a in row["accuracy"].items()]
    print(line + "\n    " + "  ".join(accs))
    out["runs"][name] = row
with open(sys.argv[1], "w") as f:
    json.dump(out, f, indent=2)
print(f"wrote {sys.argv[1]}")
bad = [name for name, r in out["runs"].items() if r["status"] != "finished"]
if bad:
    raise SystemExit(f"GPU CHECK FAILED: not finished: {bad}")
PY
echo "GPU CHECK PASSED"
