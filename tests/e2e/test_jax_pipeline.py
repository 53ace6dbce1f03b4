"""`make repro GPU=1`'s pipeline, on this CPU: the real `dvc repro` with every stage on JAX."""

from __future__ import annotations

import json

import pytest

from nextframe.model import load_predictor

from ..helpers import PATHS, run, store_client, tiny_repo

pytestmark = pytest.mark.e2e


def test_the_whole_pipeline_runs_on_jax_with_fresh_sequences(tmp_path):
    """What `make repro GPU=1` runs, on this CPU: every stage on JAX, training on sequences
    drawn fresh every epoch, in mixed precision."""
    edits = {
        "train": {"sequences": "fresh", "sequences_per_epoch": 16, "precision": "mixed_bfloat16"}
    }
    repo = tiny_repo(tmp_path / "repo", edits)
    run(["dvc", "repro"], repo, KERAS_BACKEND="jax")
    report = json.loads((repo / PATHS["eval_metrics"]).read_text())
    assert 0 < report["model"]["mse"] < report["baselines"]["copy_last"]["mse"]
    found = store_client(repo).get_run(json.loads((repo / PATHS["run_info"]).read_text())["run_id"])
    assert found.info.status == "FINISHED"
    assert found.data.tags["keras_backend"] == "jax"
    assert found.data.tags["device"] == "1 x cpu"
    assert found.data.params["train.sequences"] == "fresh"
    assert found.data.params["train.precision"] == "mixed_bfloat16"
    assert len(list((repo / PATHS["gifs"]).glob("*.gif"))) == 2
    assert load_predictor(repo / PATHS["model"]).dtype_policy.name == "float32"
