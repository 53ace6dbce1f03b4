#!/usr/bin/env bash
# benchmarks/gpu_train.py on a GPU machine that has Python and JAX but no package index and no
# clone's environment: `make gpu-bundle` (on a machine with the index) writes gpu_bundle/ with
# the wheels it needs beyond JAX and the digit pools; carry the repo with it and run this from
# the repo root. Arguments go to gpu_train.py; figures land in $OUT (or here).
set -euo pipefail
venv="${TMPDIR:-/tmp}/nextframe-gpu-bench"
python3 -m venv --system-site-packages "$venv"  # JAX (and its CUDA) from the machine
"$venv/bin/python" -m pip install --quiet --no-index --no-deps gpu_bundle/wheels/*.whl
KERAS_BACKEND=jax PYTHONPATH=src "$venv/bin/python" benchmarks/gpu_train.py \
  --digits gpu_bundle/digits.npz --out "${OUT:-.}/gpu_train.json" "$@"
