"""A team's setup on real servers: PostgreSQL and `mlflow server` with proxied artifacts, two
`nextframe tune` workers on its PostgreSQL, a DVC remote shared by two clones."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest

from nextframe.ops import server as nextframe_server
from nextframe.ops.processes import free_port

from ..helpers import PATHS, git_commit, run, tiny_repo
from ..helpers import clean_env as env

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (nextframe_server.PG_BIN / "postgres").is_file(),
        reason=f"PostgreSQL 15 is not in {nextframe_server.PG_BIN} (.ci/run installs it)",
    ),
]


@pytest.fixture(scope="module")
def server() -> Iterator[nextframe_server.Server]:
    """PostgreSQL and `mlflow server` on free loopback ports, each in its own process group."""
    # Not pytest's tmp_path: its parents are private to us, and PostgreSQL runs as `postgres`
    # when we are root.
    state = Path(tempfile.mkdtemp(prefix="nextframe-server-"))
    state.chmod(0o711)
    try:
        with nextframe_server.running_server(
            state / "server",
            port=free_port(),
            workers=1,
            log=state / "mlflow-server.log",
        ) as running:
            yield running
        for process in (running.mlflow, running.postgres):
            assert process.poll() is not None
            with pytest.raises(ProcessLookupError):
                os.killpg(process.pid, 0)  # nothing of its group is left
    finally:
        shutil.rmtree(state, ignore_errors=True)


@dataclass(frozen=True)
class Tuned:
    storage: str  # the study's PostgreSQL URL, password included
    password: str
    output: str  # both workers' stdout and stderr


def api(server, endpoint: str, **query: str) -> dict:
    """GET a REST endpoint of the tracking server, as any HTTP client would."""
    url = f"{server.url}/api/2.0/mlflow/{endpoint}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def alice(tmp_path_factory, server) -> Path:
    """The tiny pipeline reproduced once against the server, committed with its dvc.lock."""
    repo = tiny_repo(tmp_path_factory.mktemp("team") / "alice")
    run(["dvc", "repro"], repo, MLFLOW_TRACKING_URI=server.url)
    git_commit(repo, "reproduced")
    return repo


def test_server_holds_the_run_params_metrics_and_model(alice, server, tmp_path):
    """Read back through the REST API; the model is downloaded through the server."""
    experiment = api(server, "experiments/get-by-name", experiment_name="nextframe")
    assert experiment["experiment"]["artifact_location"].startswith("mlflow-artifacts:")
    run_id = json.loads((alice / PATHS["run_info"]).read_text())["run_id"]
    found = api(server, "runs/get", run_id=run_id)["run"]
    assert found["info"]["status"] == "FINISHED"
    assert found["info"]["artifact_uri"].startswith("mlflow-artifacts:")
    params = {p["key"]: p["value"] for p in found["data"]["params"]}
    assert params["epochs"] == "1" and params["model.filters"] == "[4, 4]"
    metrics = {m["key"]: m["value"] for m in found["data"]["metrics"]}
    eval_report = json.loads((alice / PATHS["eval_metrics"]).read_text())
    assert metrics["eval.model.mse"] == pytest.approx(eval_report["model"]["mse"])
    assert {"loss", "val_loss"} <= set(metrics)

    client = mlflow.MlflowClient(tracking_uri=server.url)
    (model,) = client.search_logged_models(
        experiment_ids=[experiment["experiment"]["experiment_id"]],
        filter_string=f"source_run_id = '{run_id}'",
    )
    local = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=model.artifact_location, dst_path=str(tmp_path), tracking_uri=server.url
        )
    )
    assert "keras" in (local / "MLmodel").read_text()
    assert any(p.suffix == ".keras" and p.stat().st_size > 0 for p in local.rglob("*"))
    assert not (alice / "mlartifacts").exists() and not (alice / "mlflow.db").exists()


def test_parallel_workers_create_the_experiment_once(server, tmp_path):
    from ..test_tracking import configure_at_once

    results = configure_at_once(
        tmp_path, tmp_path / "ready", "at-once", env(MLFLOW_TRACKING_URI=server.url)
    )
    assert [code for code, _, _ in results] == [0, 0], [err[-2000:] for _, _, err in results]
    assert len({out for _, out, _ in results}) == 1


def _digests(repo: Path) -> dict[str, str]:
    outputs = [p for d in ("data", "models", "renders", "metrics") for p in (repo / d).rglob("*")]
    return {
        str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in outputs
        if p.is_file()
    }


def test_push_then_pull_in_a_fresh_clone_restores_every_output(alice, tuned, tmp_path):
    """The default remote (under ~/.cache, here a temp HOME) and a bare git remote between;
    the experiment pushed and pulled is a tune trial's (run up to train)."""
    home = {"HOME": str(tmp_path / "home")}
    origin = tmp_path / "origin.git"
    run(["git", "init", "-q", "--bare", str(origin)], tmp_path)
    run(["git", "push", "-q", str(origin), "HEAD:refs/heads/main"], alice)
    run(["dvc", "push"], alice, **home)
    exp_name = "team-trial-0"
    run(["dvc", "exp", "push", str(origin), exp_name], alice, **home)

    bob = tmp_path / "bob"
    run(["git", "clone", "-q", "-b", "main", str(origin), str(bob)], tmp_path)
    run(["dvc", "pull"], bob, **home)
    assert _digests(bob) == _digests(alice)
    assert "up to date" in run(["dvc", "status"], bob).stdout
    again = run(["dvc", "repro"], bob).stdout
    assert "Running stage" not in again, again

    run(["dvc", "exp", "pull", "origin", exp_name], bob, **home)
    assert exp_name in run(["dvc", "exp", "show", "--csv"], bob).stdout
    run(["dvc", "exp", "apply", exp_name], bob)
    assert "up to date" in run(["dvc", "status", "train"], bob).stdout


@pytest.fixture(scope="module")
def tuned(alice, server) -> Tuned:
    """Two `nextframe tune` workers at once on the team server's database (`make server`
    prints its URL), one trial each: each a DVC experiment in alice's repo (`dvc exp run` up
    to train) and a run on the server. This is also the team's "many workers" path: DVC's
    queue with two workers is held by tests/e2e/test_pipeline.py."""
    import optuna

    password = server.password_file.read_text().strip()
    storage = server.studies_uri.replace("@", f":{password}@", 1)
    study = optuna.create_study(storage=storage, study_name="team", direction="minimize")
    for lr in (0.0015, 0.0025):  # one each, whoever asks first
        study.enqueue_trial({"train.lr": lr})
    (alice / "team-space.yaml").write_text("train.lr: {low: 1.0e-3, high: 1.0e-2, log: true}\n")
    command = ["nextframe", "tune", "--space", "team-space.yaml", "--storage", storage]
    workers = [
        subprocess.Popen(
            [*command, "--study-name", "team", "--trials", "1"],
            cwd=alice,
            env=env(MLFLOW_TRACKING_URI=server.url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for _ in range(2)
    ]
    results = [worker.communicate(timeout=300) for worker in workers]
    assert [w.returncode for w in workers] == [0, 0], [err[-2000:] for _, err in results]
    return Tuned(storage, password, "".join(out + err for out, err in results))


def test_two_tune_workers_share_a_study_on_the_servers_postgresql(tuned, alice, server):
    import optuna

    storage = tuned.storage
    assert tuned.password not in tuned.output
    trials = optuna.load_study(study_name="team", storage=storage).get_trials()
    assert sorted(t.params["train.lr"] for t in trials) == [0.0015, 0.0025]
    assert {t.state.name for t in trials} == {"COMPLETE"}
    client = mlflow.MlflowClient(tracking_uri=server.url)
    experiment = client.get_experiment_by_name("nextframe")
    runs = client.search_runs([experiment.experiment_id], "tags.`optuna.study` = 'team'")
    assert sorted(r.data.tags["optuna.trial"] for r in runs) == ["0", "1"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    shown = run(["dvc", "exp", "ls", "--name-only"], alice).stdout.split()
    assert {"team-trial-0", "team-trial-1"} <= set(shown)
