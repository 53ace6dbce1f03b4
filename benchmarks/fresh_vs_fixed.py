"""The CPU default's training data: fixed sequences against fresh ones, on the same budget.

The pipeline's own stages run in a temp dir with params.yaml (or --params) twice, changing
only `train.sequences`: `fixed` (the `data.n_train` sequences of the train split, every
epoch) and `fresh` (as many new ones each epoch, drawn from the training digits: this sets
`train.sequences_per_epoch` to `data.n_train`). Same epochs, batches and steps, so the same
compute. Prints the closed-loop MSE of
each on the test split and, last, `ratio <fresh MSE / fixed MSE>` (below 1: fresh is better).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from nextframe.ops.layout import stage_command

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_stage(name: str, workdir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "MLFLOW_"))}
    env["DVC_ROOT"] = str(workdir)  # each side gets its own MLflow store in its workdir
    result = subprocess.run(
        stage_command(name, REPO_ROOT, workdir),
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"{name} failed in {workdir}:\n{result.stderr[-2000:]}")


def closed_loop_mse(workdir: Path) -> float:
    for stage in ("train", "evaluate"):
        run_stage(stage, workdir)
    return json.loads((workdir / "metrics" / "eval.json").read_text())["model"]["mse"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml", type=Path)
    parser.add_argument("--epochs", type=int, help="instead of params.yaml's (a quick look)")
    args = parser.parse_args()
    params = yaml.safe_load(args.params.read_text(encoding="utf-8"))
    if args.epochs:
        params["epochs"] = args.epochs
    params["train"]["sequences_per_epoch"] = params["data"]["n_train"]
    with tempfile.TemporaryDirectory(prefix="fresh_vs_fixed_") as tmp:
        prepared = Path(tmp) / "prepared"
        prepared.mkdir()
        (prepared / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        for stage in ("fetch", "preprocess"):
            run_stage(stage, prepared)
        mse = {}
        for sequences in ("fixed", "fresh"):
            workdir = Path(tmp) / sequences
            shutil.copytree(prepared, workdir)
            params["train"]["sequences"] = sequences
            (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            mse[sequences] = closed_loop_mse(workdir)
            print(f"{sequences}: closed-loop MSE {mse[sequences]:.2f}", flush=True)
    print(
        f"{params['epochs']} epochs of {params['data']['n_train']} sequences, batch "
        f"{params['train']['batch_size']}"
    )
    print(f"ratio {mse['fresh'] / mse['fixed']:.3f}")


if __name__ == "__main__":
    main()
