"""Training across processes on JAX's distributed runtime, for real on this CPU: two OS
processes of the train stage, one CPU device each, joined over localhost (gloo), against one
process with two simulated devices, which is `make repro GPU=1`'s whole pipeline on JAX.
Process 0 alone writes and tracks; a killed process stops the other with one line, and the
backup it leaves resumes the training."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from nextframe.model import load_predictor
from nextframe.ops.processes import free_port, group_alive

from .helpers import (
    PATHS,
    REPO_ROOT,
    clean_env,
    find_runs,
    run,
    stage_command,
    store_client,
    tiny_repo,
)

pytestmark = pytest.mark.integration


def workdir_with_data(source: Path, path: Path) -> Path:
    """`source`'s data and params, no outputs."""
    path.mkdir(parents=True)
    shutil.copytree(source / "data", path / "data")
    shutil.copy2(source / "params.yaml", path / "params.yaml")
    return path


def start(workdir: Path, process: int | None, port: int, processes: int = 2, **env):
    """The train stage as DVC runs it; with `process`, as that process of a cluster."""
    if process is not None:
        env |= {
            "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{port}",
            "KERAS_DISTRIBUTION_NUM_PROCESSES": str(processes),
            "KERAS_DISTRIBUTION_PROCESS_ID": str(process),
        }
    return subprocess.Popen(
        stage_command("train", workdir),
        cwd=workdir,
        env=clean_env(DVC_ROOT=str(workdir), KERAS_BACKEND="jax", **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(processes: list[subprocess.Popen], seconds: float = 300) -> list[tuple[int, str]]:
    """Each process's exit code and stderr; every process group ended whatever happens."""
    try:
        errors = [p.communicate(timeout=seconds)[1] for p in processes]
        return [(p.returncode, err) for p, err in zip(processes, errors, strict=True)]
    finally:
        for p in processes:
            if group_alive(p.pid):
                os.killpg(p.pid, signal.SIGKILL)


def losses(workdir: Path) -> list[float]:
    with (workdir / PATHS["history"]).open() as rows:
        return [float(r[k]) for r in csv.DictReader(rows) for k in ("loss", "val_loss")]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Killed:
    """A cluster's training killed in its second epoch (process 1's group), then resumed by
    two new processes; beside it, the same training in one process on two devices."""

    single: Path
    cluster: Path
    chief_code: int
    chief_last_line: str
    seconds_to_stop: float
    groups_alive: bool
    statuses_after_kill: set[str]
    model_after_kill: bool
    resumed: list[tuple[int, str]]


# What `make repro GPU=1` trains: sequences drawn fresh every epoch, in mixed precision.
TRAINING = {
    "epochs": 2,
    "train": {"sequences": "fresh", "sequences_per_epoch": 96, "precision": "mixed_bfloat16"},
}


@pytest.fixture(scope="module")
def killed(tmp_path_factory) -> Killed:
    """One scenario for the tests below (each JAX process costs ~15 CPU-s here): the single
    process's run (the real `dvc repro`, every stage on JAX, on two simulated devices), the
    cluster's killed run on its data, and the two processes that resume it."""
    root = tmp_path_factory.mktemp("cluster")
    single = tiny_repo(root / "single", TRAINING)
    devices = "--xla_force_host_platform_device_count=2"
    run(["dvc", "repro"], single, KERAS_BACKEND="jax", XLA_FLAGS=devices)

    workdir = workdir_with_data(single, root / "work")
    port = free_port()
    chief, worker = start(workdir, 0, port), start(workdir, 1, port)
    checkpoint = workdir / PATHS["backup"] / "checkpoint.json"
    try:
        deadline = time.monotonic() + 240
        while not checkpoint.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert checkpoint.exists(), "no epoch was backed up"
        time.sleep(0.5)  # into the next epoch
        os.killpg(worker.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        ((code, err),) = finish([chief], seconds=60)
        seconds = time.monotonic() - killed_at
    finally:
        finish([chief, worker], seconds=5)
    print(f"the chief stopped {seconds:.1f} s after process 1 was killed")
    after_kill = {
        "statuses_after_kill": {run.info.status for run in find_runs(workdir)},
        "model_after_kill": (workdir / PATHS["model"]).exists(),
        "groups_alive": group_alive(chief.pid) or group_alive(worker.pid),
    }
    port = free_port()
    resumed = finish([start(workdir, 0, port), start(workdir, 1, port)])
    return Killed(
        single, workdir, code, err.strip().splitlines()[-1], seconds, resumed=resumed, **after_kill
    )


def test_two_processes_train_as_one_process_on_two_devices(killed):
    """The resumed cluster ends where one process on two devices ends: the same losses, the
    same weights, one MLflow run (process 1 tracks nothing), no backup left."""
    assert [code for code, _ in killed.resumed] == [0, 0], killed.resumed[0][1][-3000:]
    one, two = losses(killed.single), losses(killed.cluster)
    largest = max(abs(a - b) for a, b in zip(one, two, strict=True))
    print(f"two processes vs two devices of one: largest loss difference {largest:.1e}")
    assert largest <= 1e-6  # the same sums in the same order: identical here
    assert md5(killed.cluster / PATHS["model"]) == md5(killed.single / PATHS["model"])
    assert len(find_runs(killed.cluster)) == 1  # process 1 tracked nothing
    assert not (killed.cluster / PATHS["backup"]).exists()


@pytest.mark.e2e
def test_the_whole_pipeline_runs_on_jax_with_fresh_sequences(killed):
    """What `make repro GPU=1` runs, on this CPU: every stage on JAX, training on sequences
    drawn fresh every epoch, in mixed precision, here on two devices."""
    repo = killed.single
    report = json.loads((repo / PATHS["eval_metrics"]).read_text())
    assert 0 < report["model"]["mse"] < report["baselines"]["copy_last"]["mse"]
    found = store_client(repo).get_run(json.loads((repo / PATHS["run_info"]).read_text())["run_id"])
    assert found.info.status == "FINISHED"
    assert found.data.tags["keras_backend"] == "jax"
    assert found.data.tags["device"] == "2 x cpu"
    assert found.data.params["train.sequences"] == "fresh"
    assert found.data.params["train.precision"] == "mixed_bfloat16"
    assert len(list((repo / PATHS["gifs"]).glob("*.gif"))) == 2
    assert load_predictor(repo / PATHS["model"]).dtype_policy.name == "float32"


def test_a_killed_process_ends_the_other_with_one_line_and_the_backup_resumes(killed):
    assert killed.chief_code == 1
    assert killed.chief_last_line.startswith(
        "error: training stopped: process 1 of 2 left the cluster"
    ), killed.chief_last_line
    assert killed.seconds_to_stop < 30
    assert not killed.groups_alive
    assert killed.statuses_after_kill == {"FAILED"}  # none RUNNING
    assert not killed.model_after_kill

    assert [code for code, _ in killed.resumed] == [0, 0], killed.resumed[0][1][-3000:]
    assert len(losses(killed.cluster)) == 2 * 2  # both epochs, the one before the kill included
    (run,) = find_runs(killed.cluster)
    assert run.info.status == "FINISHED" and "resumed_at_epoch" in run.data.tags


# The train stage's agreement on the backup, alone: the chief holds epoch 2 in the first folder
# given, process 1 reads the second.
AGREE_ON_BACKUP = """
import sys
from pathlib import Path
from nextframe import cli
from nextframe.cluster import cluster_from_env, join
from nextframe.resume import Backup, FollowerBackup, agree_on_backup

def main():
    cluster = cluster_from_env()
    join(cluster)
    fingerprint = {"params": {}, "data": {}}
    folder = Path(sys.argv[1 + cluster.process])
    backup = Backup(folder) if cluster.chief else FollowerBackup(folder, cluster.process)
    backup.open(fingerprint)
    if cluster.chief:
        (folder / "epoch-2.weights.h5").write_bytes(b"")
        (folder / "checkpoint.json").write_text('{"epoch": 2}')
    agree_on_backup(cluster, backup, fingerprint)

cli.run(main)
"""


@pytest.mark.parametrize("shared", [True, False])
def test_followers_that_cannot_see_the_chiefs_backup_stop_every_process(tmp_path, shared):
    folders = [tmp_path / "chief", tmp_path / ("chief" if shared else "follower")]
    port, processes = free_port(), []
    for process in (0, 1):
        env = {
            "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{port}",
            "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
            "KERAS_DISTRIBUTION_PROCESS_ID": str(process),
        }
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", AGREE_ON_BACKUP, *map(str, folders)],
                cwd=REPO_ROOT,
                env=clean_env(KERAS_BACKEND="jax", **env),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
        )
    results = finish(processes, seconds=120)
    if shared:
        assert [code for code, _ in results] == [0, 0], results[0][1][-2000:]
        return
    lines = [err.strip().splitlines()[-1] for _, err in results]
    assert [code for code, _ in results] == [1, 1], lines
    assert lines[0] == lines[1]  # the chief says the follower's line
    assert lines[0].startswith("error: follower 1: the chief's backup at ")
    assert "is not visible here (epoch 2 there, none here)" in lines[0]
