"""The real `dvc` on a copy of this repo with tiny params: repro, status, experiments, MLflow."""

from __future__ import annotations

import json
import time
from pathlib import Path

import mlflow
import pytest
import yaml

from ..conftest import merge
from .tiny_repo import run, tiny_copy

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A git+DVC copy of this repo's tracked and new files, with tiny params, reproduced once."""
    repo = tiny_copy(tmp_path_factory.mktemp("nextframe") / "repo")
    run(["dvc", "repro"], repo)
    return repo


def client(repo: Path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")


def runs(repo: Path, filter_string: str = "") -> list:
    c = client(repo)
    experiment = c.get_experiment_by_name("nextframe")
    return c.search_runs([experiment.experiment_id], filter_string=filter_string)


def test_repro_writes_every_output(repo):
    for path in [
        "data/raw/sequences.npy",
        "data/processed/train.npy",
        "data/processed/test.npy",
        "data/processed/manifest.json",
        "models/model.keras",
        "metrics/train.json",
        "metrics/train_history.csv",
        "metrics/eval.json",
        "metrics/eval_per_step.csv",
        "renders/grid.png",
    ]:
        assert (repo / path).stat().st_size > 0, path
    assert len(list((repo / "renders/gifs").glob("*.gif"))) == 2
    report = json.loads((repo / "metrics/eval.json").read_text())
    assert set(report["baselines"]) == {"zeros", "copy_last", "mean_context"}
    assert report["model"]["mse"] > 0


def test_status_is_clean_and_second_repro_runs_nothing(repo):
    status = run(["dvc", "status"], repo).stdout
    assert "up to date" in status, status
    again = run(["dvc", "repro"], repo).stdout
    assert "Running stage" not in again, again


def test_mlflow_holds_the_run_with_params_metrics_model_and_tags(repo):
    (found,) = runs(repo)
    assert found.info.status == "FINISHED"
    assert found.data.params["epochs"] == "1"
    assert found.data.params["model.filters"] == "[4, 4]"
    assert "loss" in found.data.metrics and "val_loss" in found.data.metrics
    assert "eval.model.mse" in found.data.metrics
    assert len(found.data.tags["mlflow.source.git.commit"]) == 40
    artifacts = {a.path for a in client(repo).list_artifacts(found.info.run_id, "renders")}
    assert "renders/grid.png" in artifacts
    run_info = json.loads((repo / "models/mlflow_run.json").read_text())
    assert run_info["run_id"] == found.info.run_id


def test_experiment_run_lands_in_the_same_store_with_its_name(repo):
    run(["dvc", "exp", "run", "-S", "epochs=2"], repo)
    (found,) = runs(repo, "params.epochs = '2'")
    assert found.info.status == "FINISHED"
    assert found.data.tags["dvc.exp_name"] == found.info.run_name
    assert found.data.tags["dvc.baseline_rev"]


def test_temp_experiment_lands_in_the_main_store(repo):
    """`--temp` runs in .dvc/tmp/exps/...; its run must still reach the repo-root store."""
    run(["dvc", "exp", "run", "--temp", "-S", "epochs=3"], repo)
    (found,) = runs(repo, "params.epochs = '3'")
    assert found.data.tags["dvc.exp_name"]
    assert not list((repo / ".dvc" / "tmp").rglob("mlflow.db"))


def test_queued_experiment_lands_in_the_main_store(repo):
    """`--queue` + `dvc queue start` runs in a background worker in .dvc/tmp/exps/..."""
    run(["dvc", "exp", "run", "--queue", "-S", "epochs=4"], repo)
    run(["dvc", "queue", "start"], repo)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = run(["dvc", "queue", "status"], repo).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(2)
    assert "Success" in status, status
    (found,) = runs(repo, "params.epochs = '4'")
    assert found.info.status == "FINISHED"
    assert found.data.tags["dvc.exp_name"] == found.info.run_name


def _without_batch_size(params: dict) -> dict:
    params["train"].pop("batch_size")
    return params


# Ten bad edits, each caught by the first stage that reads the key.
BAD_EDITS = [
    ({"model": {"filters": [-3, 4]}}, "model.filters[0] must be a positive integer, got -3"),
    ({"train": {"optimiser": "adam"}}, "unknown key train.optimiser"),
    ({"data": {"step_length": 0}}, "data.step_length must be > 0, got 0"),
    ({"epochs": "ten"}, "epochs must be an integer, got 'ten'"),
    (
        {"train": {"lr": "1e-3"}},
        "train.lr must be a number, got '1e-3' (YAML reads 1e-3 as text: write 1.0e-3)",
    ),
    (
        {"model": {"normalization": "instance"}},
        "model.normalization must be one of 'none', 'batch', 'layer' or 'group', got 'instance'",
    ),
    ({"model": {"patch_size": 3}}, "model.patch_size must divide data.frame_size (64), got 3"),
    ({"data": {"n_context": 9}}, "data.n_context must be smaller than data.n_frames (8), got 9"),
    (_without_batch_size, "train.batch_size is missing"),
    ({"render": {"n_sequences": 5000}}, "render.n_sequences must be <= 64, got 5000"),
]


@pytest.mark.parametrize(("edit", "message"), BAD_EDITS)
def test_bad_params_fail_repro_with_one_line(repo, edit, message):
    original = (repo / "params.yaml").read_text()
    outputs = sorted(
        p for d in ("data", "models", "metrics", "renders") for p in (repo / d).rglob("*")
    )
    before = {p: p.read_bytes() for p in outputs if p.is_file()}
    try:
        raw = yaml.safe_load(original)
        bad = edit(raw) if callable(edit) else merge(raw, edit)
        (repo / "params.yaml").write_text(yaml.safe_dump(bad, sort_keys=False))
        result = run(["dvc", "repro"], repo, check=False)
        assert result.returncode != 0
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert errors == [f"error: params.yaml: {message}"], result.stderr
        assert "Traceback" not in result.stderr
        after = {p: p.read_bytes() for p in outputs if p.is_file()}
        assert after == before, "a failed repro must leave the last outputs untouched"
    finally:
        (repo / "params.yaml").write_text(original)
