#!/usr/bin/env bash
# Download the wheels that bench/gpu_check.sh installs on a GPU machine without network access.
#
#   bash bench/gpu_wheels.sh            # -> .whl/ at the repo root, for CPython 3.12 on x86-64 Linux
#
# That machine already has torch (CUDA), transformers, accelerate, numpy, pandas, pyarrow, xxhash, typer, rich,
# jinja2, requests, pyyaml, psutil, huggingface-hub and their dependencies; it lacks TRL, datasets, sqlmodel and
# what they need. Versions are pinned to one consistent set (checked with each wheel's Requires-Dist):
#   - datasets 4.8.x, not 5.x: 5.x needs huggingface-hub >= 1.31, and transformers 5.17 there may have an older 1.x;
#     4.8.5 takes huggingface-hub >= 0.25, < 2.0.
#   - pydantic 2.14 needs typing-extensions >= 4.16, newer than torch may have brought, so it comes along.
#   - wandb stays out: its closure (a Go binary, OpenTelemetry, cwevals, ...) is larger than everything else
#     together, and the GPU check runs with --wandb disabled (offline WandB is tested on CPU in CI).
# GPU_WHEELS_PYTHON=3.11 GPU_WHEELS_DEST=/tmp/whl311 downloads the same set for another Python, for a dry run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER=${GPU_WHEELS_PYTHON:-3.12}
DEST=${GPU_WHEELS_DEST:-.whl}
WHEELS=(
    trl==1.16.0
    datasets==4.8.5 dill==0.4.1 multiprocess==0.70.19
    sqlmodel==0.0.50 SQLAlchemy==2.1.9
    pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing_extensions==4.16.0
)
rm -rf "$DEST" && mkdir -p "$DEST"
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$DEST" "${WHEELS[@]}"
count=$(ls "$DEST"/*.whl | wc -l)
if [ "$count" -ne "${#WHEELS[@]}" ]; then
    echo "gpu_wheels: expected ${#WHEELS[@]} wheels, got $count" >&2
    exit 1
fi
ls -l "$DEST"
du -sh "$DEST"
