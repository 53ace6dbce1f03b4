"""The train stage as DVC runs it (real processes, a real MLflow store, tiny params):
determinism (a killed and resumed run ends on the bytes of an uninterrupted one), resume
after a kill, and a loud failure when the loss diverges."""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest

from nextframe.presets import merged

from .helpers import (
    PATHS,
    find_runs,
    run_stage,
    start_stage,
    store_client,
    tiny_params,
    write_params,
)

pytestmark = pytest.mark.integration

EPOCHS = 4
# Fresh sequences, the path with the most state to resume (the data order is drawn, not
# read); ClipBatches' order is a pure function of the index too (tests/data/test_dataset.py).
# Six batches an epoch, not the tiny set's two: a kill lands between epochs, not after them.
TRAIN_STAGE_EDITS = {"epochs": EPOCHS, "train": {"sequences": "fresh", "sequences_per_epoch": 48}}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A workdir with tiny params and the fetched, preprocessed data."""
    workdir = tmp_path_factory.mktemp("train") / "prepared"
    write_params(workdir, tiny_params(TRAIN_STAGE_EDITS))
    for stage in ("fetch", "preprocess"):
        result = run_stage(stage, workdir)
        assert result.returncode == 0, result.stderr
    return workdir


def copy_of(prepared: Path, tmp_path: Path, name: str, edits: dict | None = None) -> Path:
    """A copy of the prepared workdir, with params `edits` (same nesting as params.yaml)."""
    workdir = tmp_path / name
    shutil.copytree(prepared, workdir)
    if edits:
        write_params(workdir, merged(tiny_params(TRAIN_STAGE_EDITS), edits))
    return workdir


def finish(process) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=600)
    return process.returncode, stderr


def trained(workdir: Path) -> Path:
    result = run_stage("train", workdir)
    assert result.returncode == 0, result.stderr
    return workdir


def weights(workdir: Path) -> list[np.ndarray]:
    from nextframe.model import load_predictor

    return [np.asarray(w) for w in load_predictor(workdir / PATHS["model"]).get_weights()]


def the_run(workdir: Path):
    (run,) = find_runs(workdir)
    return run


def kill_after_an_epoch(workdir: Path, signum: int) -> tuple[int, int]:
    """Start the train stage, send `signum` once an epoch is backed up: (exit code, the
    number of epochs the backup holds)."""
    process = start_stage("train", workdir)
    checkpoint = workdir / "models/backup/checkpoint.json"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signum)
    code, _ = finish(process)
    return code, json.loads(checkpoint.read_text())["epoch"]


@pytest.fixture(scope="module")
def uninterrupted(prepared, tmp_path_factory) -> Path:
    return trained(copy_of(prepared, tmp_path_factory.mktemp("a"), "run"))


def test_killed_run_resumes_to_the_same_weights_in_the_same_mlflow_run(
    uninterrupted, prepared, tmp_path
):
    workdir = copy_of(prepared, tmp_path, "killed")
    code, killed_at = kill_after_an_epoch(workdir, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, "the stage must be killed before it finishes"
    assert 1 <= killed_at < EPOCHS
    assert not (workdir / PATHS["model"]).exists()
    assert the_run(workdir).info.status == "FAILED"

    trained(workdir)
    for a, b in zip(weights(uninterrupted), weights(workdir), strict=True):
        np.testing.assert_array_equal(a, b)
    run = the_run(workdir)  # still one run: the interrupted one, continued
    assert run.info.status == "FINISHED"
    assert int(run.data.tags["resumed_at_epoch"]) == killed_at + 1
    assert "failure_reason" not in run.data.tags
    history = (workdir / PATHS["history"]).read_text()
    assert history == (uninterrupted / PATHS["history"]).read_text()
    # a run of the same params gives the same bytes, killed on the way or not
    metrics = (workdir / PATHS["train_metrics"]).read_text()
    assert metrics == (uninterrupted / PATHS["train_metrics"]).read_text()
    for done in (workdir, uninterrupted):
        assert not (done / "models/backup").exists(), "the backup goes once outputs exist"


def test_a_run_killed_hard_then_superseded_by_other_params_ends_failed(prepared, tmp_path):
    """SIGKILL (a lost machine) leaves the MLflow run RUNNING; once other params discard its
    backup, nothing would ever resume it: it must end FAILED, with the reason."""
    workdir = copy_of(prepared, tmp_path, "sigkill")
    code, _ = kill_after_an_epoch(workdir, signal.SIGKILL)
    assert code == -signal.SIGKILL
    (killed,) = find_runs(workdir)
    assert killed.info.status == "RUNNING"

    # Other params, and one epoch: the new run only has to finish.
    edits = {"epochs": 1, "train": {"lr": 1.0e-3}}
    write_params(workdir, merged(tiny_params(TRAIN_STAGE_EDITS), edits))
    result = run_stage("train", workdir)
    assert result.returncode == 0, result.stderr
    assert "starting over" in result.stdout and killed.info.run_id in result.stdout
    runs = {run.info.run_id: run for run in find_runs(workdir)}
    assert len(runs) == 2
    abandoned = runs.pop(killed.info.run_id)
    assert abandoned.info.status == "FAILED"
    assert "params or data changed" in abandoned.data.tags["failure_reason"]
    ((_, new),) = runs.items()
    assert new.info.status == "FINISHED"


def test_diverging_loss_fails_the_stage_and_the_run_and_writes_no_model(prepared, tmp_path):
    # Unbounded activations, no normalisation, plain SGD at a rate that overflows float32 on the
    # first step: NaN in the first epoch.
    workdir = copy_of(
        prepared,
        tmp_path,
        "nan",
        {
            "model": {"activation": "relu", "normalization": "none"},
            "train": {"optimizer": "sgd", "lr": 1.0e30, "clipnorm": 0.0},
        },
    )
    result = run_stage("train", workdir)
    code, stderr = result.returncode, result.stderr
    assert code == 1
    (line,) = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert line.startswith("error: training diverged:") and "became nan" in line
    assert "Traceback" not in stderr
    assert not (workdir / PATHS["model"]).exists()
    assert not (workdir / "models/backup").exists()
    run = the_run(workdir)
    assert run.info.status == "FAILED"
    assert "diverged" in run.data.tags["failure_reason"]


def test_trainer_summary_and_signature_are_logged(uninterrupted):
    run = the_run(uninterrupted)
    client = store_client(uninterrupted)
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "predictor_summary.txt" in names
    assert int(run.data.params["params_count"]) > 0
    assert {"loss", "val_loss", "lr", "epoch_seconds", "sequences_per_second"} <= set(
        run.data.metrics
    )
    mlflow.set_tracking_uri(f"sqlite:///{uninterrupted / 'mlflow.db'}")
    try:
        info = mlflow.models.get_model_info(f"runs:/{run.info.run_id}/model")
    finally:
        mlflow.set_tracking_uri(None)
    assert "python_function" in info.flavors  # the rollout, served with a horizon param
    assert (info.metadata["frames"]["size"], info.metadata["frames"]["channels"]) == (64, 1)
    # a request to copy, shown in the UI: one clip as a base64 .npy
    assert info.saved_input_example_info["serving_input_path"] == "serving_input_example.json"
    # the tiny params' horizon; members, which a video model refuses (a radar model's grow)
    params = {param.name: param.default for param in info.signature.params.params}
    assert params == {"horizon": 4, "members": 0}
    (version,) = client.search_model_versions("name = 'nextframe-convlstm'")
    assert version.run_id == run.info.run_id
