import os
import subprocess
import sys

import mlflow
import pytest

from nextframe.ops import tracking


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("DVC_ROOT", "DVC_EXP_NAME", "DVC_EXP_BASELINE_REV", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_store_follows_dvc_root_not_the_working_dir(clean_env, tmp_path):
    """`dvc exp run --temp` runs in .dvc/tmp/exps/...; the store must stay at the main root."""
    main_root = tmp_path / "repo"
    main_root.mkdir()
    clean_env.setenv("DVC_ROOT", str(main_root))
    clean_env.chdir(tmp_path)
    root = tracking.repo_root()
    assert root == main_root.resolve()
    assert tracking.tracking_uri(root) == f"sqlite:///{main_root.resolve()}/mlflow.db"


def test_user_tracking_uri_wins(clean_env, tmp_path):
    clean_env.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert tracking.tracking_uri(tmp_path) == "http://127.0.0.1:5999"


def test_tags_name_commit_dirtiness_and_experiment(clean_env, tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "a.txt").write_text("a")
    subprocess.run(["git", "add", "a.txt"], cwd=tmp_path, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a"],
        cwd=tmp_path,
        check=True,
    )
    clean_env.setenv("DVC_EXP_NAME", "zesty-bear")
    clean_env.setenv("DVC_EXP_BASELINE_REV", "abc123")
    tags = tracking.run_tags(tmp_path)
    assert len(tags["mlflow.source.git.commit"]) == 40
    assert tags["git.dirty"] == "false"
    assert tags["dvc.exp_name"] == "zesty-bear"
    assert tags["dvc.baseline_rev"] == "abc123"
    assert tracking.run_name(tags) == "zesty-bear"
    (tmp_path / "a.txt").write_text("b")
    assert tracking.run_tags(tmp_path)["git.dirty"] == "true"


def test_failed_block_ends_the_run_failed_with_reason(clean_env, tmp_path):
    clean_env.setenv("DVC_ROOT", str(tmp_path))
    with pytest.raises(RuntimeError), tracking.tracked_run({"epochs": "1"}, {}) as run_id:
        raise RuntimeError("boom")
    run = mlflow.MlflowClient(tracking.tracking_uri(tmp_path)).get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["failure_reason"] == "RuntimeError: boom"
    assert run.data.params["epochs"] == "1"
    mlflow.set_tracking_uri(None)


def test_plain_runs_are_named_by_commit_and_time_experiments_by_dvc(clean_env):
    tags = {"mlflow.source.git.commit": "3d0bfdf" + "0" * 33, "git.dirty": "false"}
    assert tracking.run_name(tags, now=0) == "repro-3d0bfdf-19700101-000000"
    assert (
        tracking.run_name({**tags, "git.dirty": "true"}, now=0) == "repro-3d0bfdf+-19700101-000000"
    )
    assert tracking.run_name({}, now=61) == "repro-19700101-000101"
    clean_env.setenv("DVC_EXP_NAME", "zesty-bear")
    assert tracking.run_name(tags) == "zesty-bear"


def test_an_abandoned_run_ends_failed_with_the_reason(clean_env, tmp_path):
    clean_env.setenv("DVC_ROOT", str(tmp_path))
    experiment_id = tracking.configure()
    client = mlflow.MlflowClient(tracking.tracking_uri(tmp_path))
    run_id = client.create_run(experiment_id).info.run_id  # left RUNNING, as after SIGKILL
    tracking.end_abandoned_run(run_id, "abandoned: params changed")
    run = client.get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["failure_reason"] == "abandoned: params changed"
    mlflow.set_tracking_uri(None)


CONFIGURE_AT_ONCE = """
import sys, time
from pathlib import Path
import mlflow
from nextframe.ops import tracking
root, ready, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[4])
tracking.EXPERIMENT_NAME = sys.argv[3]
(ready / str(time.monotonic_ns())).touch()
deadline = time.monotonic() + 120
while len(list(ready.iterdir())) < n and time.monotonic() < deadline:
    time.sleep(0.01)
print(tracking.configure(root))
"""


def configure_at_once(root, ready, name: str, env: dict, n: int = 2) -> list:
    """`tracking.configure` in `n` processes let go at one moment, as parallel queue workers."""
    ready.mkdir()
    args = [sys.executable, "-c", CONFIGURE_AT_ONCE, str(root), str(ready), name, str(n)]
    processes = [
        subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(n)
    ]
    return [(p.wait(timeout=300), *p.communicate()) for p in processes]


def test_parallel_first_use_of_a_fresh_store_loses_nothing(clean_env, tmp_path):
    """Two workers migrating a new mlflow.db at once used to break it for every later run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "MLFLOW_"))}
    results = configure_at_once(tmp_path, tmp_path / "ready", "nextframe", env)
    assert [code for code, _, _ in results] == [0, 0], [err[-2000:] for _, _, err in results]
    assert len({out for _, out, _ in results}) == 1  # one experiment, the same id for all
    client = mlflow.MlflowClient(tracking.tracking_uri(tmp_path))
    assert client.get_experiment_by_name("nextframe").artifact_location.endswith("/mlartifacts")
