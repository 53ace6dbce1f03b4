"""The model registry: every training registers a version of nextframe-convlstm, and the
`champion` alias only ever moves to a better closed-loop MSE."""

from __future__ import annotations

import json

import mlflow
import pytest

from nextframe.errors import NextframeError
from nextframe.frames import FrameFormat
from nextframe.ops import registry, tracking

from .helpers import PATHS, run_stage, store_client, tiny_params, write_params

NAME = registry.REGISTERED_MODEL


@pytest.fixture
def store(monkeypatch, tmp_path) -> mlflow.MlflowClient:
    """An empty project store in tmp_path, where `tracking` logs."""
    for name in ("DVC_EXP_NAME", "DVC_EXP_BASELINE_REV", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    tracking.configure()
    yield mlflow.MlflowClient(tracking.tracking_uri(tmp_path))
    mlflow.set_tracking_uri(None)


def evaluated_version(
    client: mlflow.MlflowClient, mse: float, frames: FrameFormat | None = None
) -> str:
    """A run with `eval.model.mse` logged and a registered version from it, tagged with
    `frames` as training tags it: its run id."""
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT_NAME)
    run_id = client.create_run(experiment.experiment_id).info.run_id
    client.log_metric(run_id, "eval.model.mse", mse)
    if not client.search_registered_models(f"name = '{NAME}'"):
        client.create_registered_model(NAME)
    tags = {} if frames is None else {registry.FRAMES_TAG: json.dumps(frames.to_config())}
    client.create_model_version(NAME, f"runs:/{run_id}/model", run_id=run_id, tags=tags)
    return run_id


def champion(client: mlflow.MlflowClient) -> str:
    return str(client.get_model_version_by_alias(NAME, registry.CHAMPION_ALIAS).version)


def test_the_alias_moves_only_to_a_strictly_better_mse_of_a_registered_version(store):
    first = evaluated_version(store, 100.0)
    assert registry.crown_if_best(first, 100.0).describe() == (
        f"{NAME} v1 (MSE 100.00) is the first champion"
    )
    worse = evaluated_version(store, 120.0)
    decision = registry.crown_if_best(worse, 120.0)
    assert (decision.champion, champion(store)) == ("1", "1")
    assert decision.describe() == (
        f"{NAME} v2 (MSE 120.00) is no better than the champion v1 (MSE 100.00), which stays"
    )
    better = evaluated_version(store, 90.0)
    assert registry.crown_if_best(better, 90.0).describe() == (
        f"{NAME} v3 (MSE 90.00) is the new champion, better than v1 (MSE 100.00)"
    )
    assert champion(store) == "3"
    equal = evaluated_version(store, 90.0)
    assert not registry.crown_if_best(equal, 90.0).crowned
    assert registry.crown_if_best(better, 95.0).describe() == (
        f"{NAME} v3 (MSE 95.00) stays the champion"
    )
    assert champion(store) == "3"

    experiment = store.get_experiment_by_name(tracking.EXPERIMENT_NAME)
    unregistered = store.create_run(experiment.experiment_id).info.run_id
    with pytest.raises(NextframeError, match=f"no version of the registered model {NAME}"):
        registry.crown_if_best(unregistered, 1.0)


def holder(client: mlflow.MlflowClient, alias: str) -> str:
    return str(client.get_model_version_by_alias(NAME, alias).version)


def test_only_a_model_of_the_same_frames_takes_the_champion_and_each_format_has_its_own(store):
    """A 32x32 colour model's lower MSE sums over other pixels: it never takes the alias of a
    64x64 grey champion, but becomes the champion of its own frames."""
    grey, colour = FrameFormat(64, 1, n_context=10), FrameFormat(32, 3, n_context=4)
    assert registry.crown_if_best(evaluated_version(store, 100.0, grey), 100.0).crowned
    decision = registry.crown_if_best(evaluated_version(store, 40.0, colour), 40.0)
    assert (decision.champion, champion(store)) == ("1", "1")
    assert decision.describe() == (
        f"{NAME} v2 (MSE 40.00) takes other frames than the champion v1 (64x64x1), which "
        f"stays; among its own frames it is the first champion ({NAME}@champion-32x32x3)"
    )
    worse_colour = registry.crown_if_best(evaluated_version(store, 50.0, colour), 50.0)
    assert worse_colour.describe().endswith(
        "it is no better than v2 (MSE 40.00), which stays (nextframe-convlstm@champion-32x32x3)"
    )
    strided = FrameFormat(32, 3, frame_stride=3)
    registry.crown_if_best(evaluated_version(store, 1.0, strided), 1.0)
    better_grey = registry.crown_if_best(evaluated_version(store, 90.0, grey), 90.0)
    assert better_grey.describe() == (
        f"{NAME} v5 (MSE 90.00) is the new champion, better than v1 (MSE 100.00)"
    )
    aliases = ("champion", "champion-64x64x1", "champion-32x32x3", "champion-32x32x3-stride3")
    assert [holder(store, alias) for alias in aliases] == ["5", "5", "2", "4"]


def test_format_keys_name_what_makes_mses_comparable():
    assert registry.format_key(FrameFormat(64, 1, aspect="pad", n_context=3)) == "64x64x1"
    ranged = FrameFormat(16, 1, value_range=(-1.5, 4095.0), frame_stride=2)
    assert registry.format_key(ranged) == "16x16x1-rangem1p5to4095-stride2"


def test_a_worse_second_training_leaves_the_champion_on_the_first(trained):
    """Through the real stages: the session's tiny model (v1), then a training that starts
    its frames near white and barely learns; its outputs go to other paths."""
    workdir = trained.path
    write_params(
        workdir / "worse",
        tiny_params({"model": {"head_bias_init": 3.0}, "train": {"lr": 1.0e-8}}),
    )
    outputs = {
        "--model": "models/worse.keras",
        "--run-info": "models/worse_run.json",
        "--metrics": "metrics/worse_train.json",
        "--history": "metrics/worse_history.csv",
        "--backup": "models/worse_backup",
    }
    params = ["--params", "worse/params.yaml"]
    train = run_stage("train", workdir, *params, *[a for pair in outputs.items() for a in pair])
    assert train.returncode == 0, train.stderr
    assert f"registered the model as {NAME} v2" in train.stdout
    evaluate = run_stage(
        "evaluate",
        workdir,
        *params,
        *("--model", outputs["--model"], "--run-info", outputs["--run-info"]),
        *("--metrics", "metrics/worse_eval.json", "--per-step", "metrics/worse_per_step.csv"),
    )
    assert evaluate.returncode == 0, evaluate.stderr

    first = json.loads((workdir / PATHS["eval_metrics"]).read_text())["model"]["mse"]
    second = json.loads((workdir / "metrics/worse_eval.json").read_text())["model"]["mse"]
    print(f"v1 MSE {first:.2f}, v2 MSE {second:.2f}: {evaluate.stdout.splitlines()[-1]}")
    assert second > first
    assert evaluate.stdout.splitlines()[-1] == (
        f"evaluate: {NAME} v2 (MSE {second:.2f}) is no better than the champion v1 "
        f"(MSE {first:.2f}), which stays"
    )
    client = store_client(workdir)
    assert champion(client) == "1"
    assert client.get_model_version(NAME, "1").run_id == trained.run_id
    worse_run = json.loads((workdir / outputs["--run-info"]).read_text())["run_id"]
    assert client.get_model_version(NAME, "2").run_id == worse_run
