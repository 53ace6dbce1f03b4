"""The train stage as DVC runs it (real processes, a real MLflow store, tiny params):
determinism, resume after a kill, and a loud failure when the loss diverges."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml

from .conftest import REPO_ROOT

EPOCHS = 4


def run_stage(name: str, cwd: Path, **kwargs) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "MLFLOW_"))}
    env["DVC_ROOT"] = str(cwd)  # the MLflow store lands in cwd/mlflow.db, as under dvc
    return subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "stages" / f"{name}.py")],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def finish(process: subprocess.Popen) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=600)
    return process.returncode, stderr


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, request) -> Path:
    """A workdir with tiny params and the fetched, preprocessed data."""
    workdir = tmp_path_factory.mktemp("train") / "prepared"
    workdir.mkdir()
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["epochs"] = EPOCHS
    params["data"].update(n_train=48, n_val=8, n_test=8, n_frames=8, n_context=4)
    params["model"].update(filters=[8, 8], kernel_sizes=[3, 3])
    params["train"].update(batch_size=8, context_frames=4)
    params["render"].update(n_sequences=2)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for stage in ("fetch", "preprocess"):
        code, stderr = finish(run_stage(stage, workdir))
        assert code == 0, stderr
    return workdir


def copy_of(prepared: Path, tmp_path: Path, name: str, **edits: dict) -> Path:
    """A copy of the prepared workdir, with `edits` per params section."""
    workdir = tmp_path / name
    shutil.copytree(prepared, workdir)
    if edits:
        params = yaml.safe_load((workdir / "params.yaml").read_text())
        for section, values in edits.items():
            params[section].update(values)
        (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return workdir


def trained(workdir: Path) -> Path:
    code, stderr = finish(run_stage("train", workdir))
    assert code == 0, stderr
    return workdir


def weights(workdir: Path) -> list[np.ndarray]:
    from nextframe.model import load_predictor

    return [np.asarray(w) for w in load_predictor(workdir / "models/model.keras").get_weights()]


def the_run(workdir: Path):
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("nextframe")
    (run,) = client.search_runs([experiment.experiment_id])
    return run


@pytest.fixture(scope="module")
def uninterrupted(prepared, tmp_path_factory) -> Path:
    return trained(copy_of(prepared, tmp_path_factory.mktemp("a"), "run"))


def test_two_runs_give_identical_metrics_and_weights(uninterrupted, prepared, tmp_path):
    again = trained(copy_of(prepared, tmp_path, "again"))
    first = (uninterrupted / "metrics/train.json").read_text()
    assert (again / "metrics/train.json").read_text() == first
    for a, b in zip(weights(uninterrupted), weights(again), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not (uninterrupted / "models/backup").exists(), "the backup goes once outputs exist"


def test_killed_run_resumes_to_the_same_weights_in_the_same_mlflow_run(
    uninterrupted, prepared, tmp_path
):
    workdir = copy_of(prepared, tmp_path, "killed")
    process = run_stage("train", workdir)
    metadata = workdir / "models/backup/keras/training_metadata.json"
    deadline = time.monotonic() + 300
    while not metadata.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    code, _ = finish(process)
    assert code == 128 + signal.SIGTERM, "the stage must be killed before it finishes"
    killed_at = json.loads(metadata.read_text())["epoch"]
    assert 1 <= killed_at < EPOCHS
    assert not (workdir / "models/model.keras").exists()
    assert the_run(workdir).info.status == "FAILED"

    trained(workdir)
    for a, b in zip(weights(uninterrupted), weights(workdir), strict=True):
        np.testing.assert_array_equal(a, b)
    run = the_run(workdir)  # still one run: the interrupted one, continued
    assert run.info.status == "FINISHED"
    assert int(run.data.tags["resumed_at_epoch"]) == killed_at + 1
    assert "failure_reason" not in run.data.tags
    history = (workdir / "metrics/train_history.csv").read_text()
    assert history == (uninterrupted / "metrics/train_history.csv").read_text()


def test_diverging_loss_fails_the_stage_and_the_run_and_writes_no_model(prepared, tmp_path):
    # Unbounded activations, no normalisation, plain SGD at a huge rate: NaN within 2 epochs.
    workdir = copy_of(
        prepared,
        tmp_path,
        "nan",
        model={"activation": "relu", "normalization": "none"},
        train={"optimizer": "sgd", "lr": 1.0e10, "clipnorm": 0.0},
    )
    code, stderr = finish(run_stage("train", workdir))
    assert code == 1
    (line,) = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert line.startswith("error: training diverged:") and "became nan" in line
    assert "Traceback" not in stderr
    assert not (workdir / "models/model.keras").exists()
    assert not (workdir / "models/backup").exists()
    run = the_run(workdir)
    assert run.info.status == "FAILED"
    assert "diverged" in run.data.tags["failure_reason"]


def test_trainer_summary_and_signature_are_logged(uninterrupted):
    run = the_run(uninterrupted)
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{uninterrupted / 'mlflow.db'}")
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
    assert info.flavors.keys() >= {"keras", "python_function"}
    assert info.signature.inputs.inputs[0].shape == (-1, -1, 64, 64, 1)
