"""The real `dvc` on a copy of this repo with tiny params: repro, status, experiments, MLflow."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from nextframe.presets import merged

from ..helpers import PATHS, find_runs, git_commit, run, store_client, tiny_repo, write_params

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Reproduced:
    path: Path
    run_id: str  # the MLflow run of the first `dvc repro`, before any experiment


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory) -> Reproduced:
    """The tiny copy, reproduced once."""
    repo = tiny_repo(tmp_path_factory.mktemp("nextframe") / "repo")
    run(["dvc", "repro"], repo)
    run_id = json.loads((repo / PATHS["run_info"]).read_text())["run_id"]
    return Reproduced(repo, run_id)


@pytest.fixture(scope="module")
def repo(reproduced) -> Path:
    return reproduced.path


def test_repro_writes_every_output(repo):
    for path in [
        "data/raw/windows.npy",
        "data/processed/train.npy",
        "data/processed/test.npy",
        "data/processed/manifest.json",
        "models/model.keras",
        "metrics/train.json",
        "metrics/train_history.csv",
        "metrics/eval.json",
        "metrics/eval_per_step.csv",
        "metrics/diagrams/spectra.csv",
        "renders/grid.png",
    ]:
        assert (repo / path).stat().st_size > 0, path
    spectra = (repo / PATHS["diagrams"] / "spectra.csv").read_text().splitlines()
    header = spectra[0].split(",")
    assert header[:2] == ["wavelength_px", "observed_step_1"] and "model_step_4" in header
    assert len(list((repo / PATHS["gifs"]).glob("*.gif"))) == 2
    report = json.loads((repo / PATHS["eval_metrics"]).read_text())
    assert set(report["baselines"]) == {"zeros", "copy_last", "mean_context", "extrapolation"}
    assert report["model"]["mse"] > 0


def test_status_is_clean_and_second_repro_runs_nothing(repo):
    status = run(["dvc", "status"], repo).stdout
    assert "up to date" in status, status
    again = run(["dvc", "repro"], repo).stdout
    assert "Running stage" not in again, again


def test_editing_a_package_file_a_stage_imports_makes_that_stage_stale(repo):
    """Each stage's code deps are checked by tests/test_dvc_deps.py; this is what they buy."""
    code = repo / "src/nextframe/domains/rain/evaluation.py"  # imported by evaluate, not by train
    original = code.read_text()
    try:
        code.write_text(original + "# an edit\n")
        status = run(["dvc", "status"], repo).stdout
    finally:
        code.write_text(original)
    assert (
        "evaluate:" in status
        and "modified:           src/nextframe/domains/rain/evaluation.py" in status
    )
    assert "train:" not in status, status


def test_mlflow_holds_the_run_with_params_metrics_model_and_tags(reproduced):
    repo = reproduced.path
    found = store_client(repo).get_run(reproduced.run_id)
    assert found.info.status == "FINISHED"
    assert found.info.run_name.startswith("repro-")  # commit and time: no DVC experiment
    assert found.data.params["epochs"] == "1"
    assert found.data.params["model.filters"] == "[4, 4]"
    assert "loss" in found.data.metrics and "val_loss" in found.data.metrics
    assert "eval.model.mse" in found.data.metrics
    assert len(found.data.tags["mlflow.source.git.commit"]) == 40
    artifacts = {a.path for a in store_client(repo).list_artifacts(found.info.run_id, "renders")}
    assert "renders/grid.png" in artifacts


def test_a_params_key_changes_exactly_the_stages_that_declare_it(repo):
    """Every leaf key of params.yaml changed at once: `dvc status` names, for each stage,
    every params entry it declares (a key, or a section for all its keys) and no other, so a
    changed key marks exactly the stages that read it (tests/test_dvc_yaml.py holds the
    declarations to the reads); `data.folder`, which names a dep, changes the command of the
    stage that uses it."""
    original = (repo / "params.yaml").read_text()
    params = yaml.safe_load(original)
    changed = merged(params, {k: v for k, v in changes(params).items()})
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    try:
        write_params(repo, changed)
        status = json.loads(run(["dvc", "status", "--json"], repo).stdout)
    finally:
        (repo / "params.yaml").write_text(original)
    assert set(status) == set(stages)
    for name, stage in stages.items():
        declared = set(stage.get("params", []))
        changes_ = status.get(name, [])
        reported = {
            key
            for change in changes_
            if isinstance(change, dict)
            for key in change.get("changed deps", {}).get("params.yaml", {})
        }
        assert reported == declared, f"{name}: {sorted(reported ^ declared)}"
        assert ("${data.folder}" in stage["cmd"]) == ("changed command" in changes_), name


# An empty list's key, changed: an item of its kind.
EMPTY_LIST_CHANGES = {"archives": [{"network": "fmi"}]}


def changes(values: dict) -> dict:
    """Every leaf of `values` given another value of its kind."""
    out = {}
    for name, value in values.items():
        if isinstance(value, dict):
            out[name] = changes(value)
        elif isinstance(value, bool):
            out[name] = not value
        elif isinstance(value, int | float):
            out[name] = value + 1
        elif isinstance(value, list):
            out[name] = [*value, value[-1]] if value else EMPTY_LIST_CHANGES[name]
        elif value is None:
            out[name] = [0.0, 1.0]
        else:
            out[name] = f"{value}-changed"
    return out


def test_queued_experiments_run_by_two_workers_land_in_the_main_store(repo):
    """Queue workers run in .dvc/tmp/exps/..., two at once: each run must still reach the
    repo-root sqlite store, FINISHED and named after its experiment, and no store is left
    in a worker's copy. A queued experiment whose params were run before (the repro's) is
    restored from the run cache there too, and logs no run."""
    runs_before = len(find_runs(repo))
    for epochs in (2, 1):  # 1 was the repro's: restored, not run, while 2 runs
        # up to evaluate, which registers and scores the model (rendering is tested above)
        run(["dvc", "exp", "run", "--queue", "-S", f"epochs={epochs}", "evaluate"], repo)
    # `dvc queue start -j 2`'s workers, waited on by DVC (polling `dvc queue status`, a
    # second of CPU each, cost more than the experiments' stages)
    run(["dvc", "exp", "run", "--run-all", "-j", "2"], repo, timeout=600)
    status = run(["dvc", "queue", "status"], repo).stdout
    assert status.count("Success") == 2, status
    (found,) = find_runs(repo, "params.epochs = '2'")
    assert found.info.status == "FINISHED"
    assert found.data.tags["dvc.exp_name"] == found.info.run_name
    assert found.data.tags["dvc.baseline_rev"]
    assert len(find_runs(repo)) == runs_before + 1, "the cached experiment made no run"
    assert not list((repo / ".dvc" / "tmp").rglob("mlflow.db"))


def test_an_experiment_with_params_already_run_is_restored_from_the_run_cache(reproduced):
    """After the queued experiment above (another `epochs`, run in a worker's copy), the same
    params in the workspace are restored from DVC's run cache: no stage runs, no MLflow run
    is made, in seconds, and the outputs are that worker's; then the repro's params bring the
    repro's outputs back, every stage restored."""
    repo = reproduced.path
    assert yaml.safe_load((repo / "params.yaml").read_text())["epochs"] == 1
    (queued,) = find_runs(repo, "params.epochs = '2'")
    runs_before = len(find_runs(repo))
    for epochs, target, run_id in [
        (2, ["evaluate"], queued.info.run_id),  # up to evaluate, as it was queued
        (1, [], reproduced.run_id),  # the whole pipeline: the workspace as it was
    ]:
        started = time.monotonic()
        again = run(["dvc", "exp", "run", "-S", f"epochs={epochs}", *target], repo)
        print(f"epochs={epochs} restored from the run cache in {time.monotonic() - started:.1f} s")
        assert "Running stage" not in again.stdout, again.stdout
        for stage in ("train", "evaluate"):
            assert f"Stage '{stage}' is cached - skipping run" in again.stdout, again.stdout
        restored = json.loads((repo / PATHS["run_info"]).read_text())["run_id"]
        assert restored == run_id
    assert "up to date" in run(["dvc", "status"], repo).stdout
    assert len(find_runs(repo)) == runs_before


def test_the_champion_is_the_best_version_of_every_run_so_far(repo):
    """Each run above (the repro, the queued one that ran) registered a version and evaluated
    it; wherever the stages ran, the alias ends on the lowest closed-loop MSE."""
    client = store_client(repo)
    versions = client.search_model_versions("name = 'nextframe-convlstm'")
    assert len(versions) == 2  # repro, queued epochs=2
    mse = {
        str(v.version): client.get_run(v.run_id).data.metrics["eval.model.mse"] for v in versions
    }
    champion = client.get_model_version_by_alias("nextframe-convlstm", "champion")
    assert str(champion.version) == min(mse, key=mse.get), mse


# Two bad edits through the real `dvc repro`, one caught by the first stage (fetch) and one
# by the last (render); every message is a unit test in tests/test_params.py.
BAD_EDITS = [
    ({"model": {"filters": [-3, 4]}}, "model.filters[0] must be a positive integer, got -3"),
    ({"render": {"n_sequences": 5000}}, "render.n_sequences must be <= 64, got 5000"),
]


@pytest.mark.parametrize(("edit", "message"), BAD_EDITS)
def test_bad_params_fail_repro_with_one_line(repo, edit, message):
    """DVC removes a stage's outputs before it runs it; the stage fails on its first line,
    writing nothing, and `dvc checkout` brings the last good outputs back (and git the
    metrics, which it keeps)."""
    git_commit(repo, "the outputs of the experiments above")
    original = (repo / "params.yaml").read_text()
    outputs = sorted(
        p for d in ("data", "models", "metrics", "renders") for p in (repo / d).rglob("*")
    )
    before = {p: p.read_bytes() for p in outputs if p.is_file()}
    try:
        write_params(repo, merged(yaml.safe_load(original), edit))
        result = run(["dvc", "repro"], repo, check=False)
        assert result.returncode != 0
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert errors == [f"error: params.yaml: {message}"], result.stderr
        assert "Traceback" not in result.stderr
    finally:
        (repo / "params.yaml").write_text(original)
    run(["dvc", "checkout"], repo)
    run(["git", "checkout", "--", "metrics"], repo)
    after = {p: p.read_bytes() for p in outputs if p.is_file()}
    assert after == before, "dvc checkout brings the last outputs back"
    assert "up to date" in run(["dvc", "status"], repo).stdout
