"""`nextframe tune` for real: Optuna's storage in a SQLite file, workers as separate processes,
each trial a real `dvc exp run` of the tiny pipeline tracked in its MLflow store."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
import yaml

from nextframe.errors import NextframeError
from nextframe.ops.tune import load_space, open_storage, overrides_of

from .helpers import REPO_ROOT, clean_env, find_runs, git_commit, run, tiny_params, tiny_repo

pytestmark = pytest.mark.integration

# Two epochs: a trial can be pruned after its first.
EDITS = {"epochs": 2}
SPACE = "train.lr: {low: 1.0e-7, high: 1.0e-2, log: true}\n"
GOOD, OTHER_GOOD, HOPELESS = 3.0e-3, 5.0e-3, 1.0e-7  # HOPELESS stays at its initial frames


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# Bad input: one line each, exit 1, nothing started.


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("train.lrr: {low: 1, high: 2}", "train.lrr is not a key of params.yaml"),
        (
            "train.batch_size: {low: 0, high: 16}",
            "train.batch_size = 0: train.batch_size must be a positive integer, got 0",
        ),
        ("epochs: {low: 5, high: 2}", "epochs: low (5) must be below high (2)"),
        ("train.loss: {choices: [bce, huber]}", "train.loss = 'huber': train.loss must be one of"),
        ("train.lr: {low: 0.0, high: 0.1, log: true}", "a log range needs low > 0"),
        ("model.filters: {choices: [[8, 8]], low: 1}", "choices go alone"),
    ],
)
def test_a_bad_search_space_is_one_line_per_mistake(tmp_path, entry, message):
    params = tiny_params()
    space = write(tmp_path / "space.yaml", f"{entry}\nseed: {{low: 1, high: 3}}\n")
    with pytest.raises(NextframeError) as caught:
        load_space(space, params)
    (line,) = str(caught.value).splitlines()
    assert line.startswith(f"{space}: ") and message in line, line


def test_space_values_keep_their_kinds(tmp_path):
    space = write(
        tmp_path / "space.yaml",
        "train.lr: {low: 1.0e-4, high: 1.0e-2, log: true}\nepochs: {low: 1, high: 4}\n"
        "model.filters: {choices: [[8, 8], [16, 16]]}\n",
    )
    kinds = {d.key: d.kind for d in load_space(space, tiny_params())}
    assert kinds == {"train.lr": "float", "epochs": "int", "model.filters": "categorical"}


def tune(*args: str) -> list[str]:
    return ["nextframe", "tune", "--space", "space.yaml", *args]


def test_unreachable_storage_and_a_study_of_another_direction_are_one_line(tmp_path):
    repo = tmp_path
    write(repo / "space.yaml", SPACE)
    (repo / "params.yaml").write_text(yaml.safe_dump(tiny_params(EDITS)))
    unreachable = "postgresql+psycopg://me:secret@127.0.0.1:9/nothing"
    result = run(tune("--storage", unreachable), repo, check=False)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: --storage postgresql+psycopg://me:***@127.0.0.1:9/nothing")
    assert "secret" not in result.stderr

    url = f"sqlite:///{repo / 'study.db'}"
    optuna.create_study(storage=url, study_name="up", direction="maximize")
    result = run(tune("--storage", url, "--study-name", "up"), repo, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: study up exists with direction maximize; tune minimises val_mse: "
        "give another --study-name"
    )
    assert "Trial" not in result.stdout


# Real trials: a tiny copy of the repo with its data stages run and committed.


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = tiny_repo(tmp_path_factory.mktemp("tune") / "repo", EDITS)
    write(repo / "space.yaml", SPACE)
    run(["dvc", "repro", "preprocess"], repo)
    git_commit(repo, "data")
    return repo


def storage_url(repo: Path) -> str:
    return f"sqlite:///{repo / 'tune' / 'study.db'}"


def start_worker(repo: Path, trials: int, study: str) -> subprocess.Popen:
    return subprocess.Popen(
        tune("--trials", str(trials), "--study-name", study, "--heartbeat", "1"),
        cwd=repo,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def load(repo: Path, study: str) -> optuna.Study:
    return optuna.load_study(study_name=study, storage=storage_url(repo))


def experiments(repo: Path) -> set[str]:
    shown = run(["dvc", "exp", "ls", "--name-only"], repo).stdout.split()
    return set(shown)


def test_workers_share_a_study_a_lost_trial_is_retried_a_bad_one_pruned_and_best_applied(repo):
    """Worker A is killed (its whole process group: a lost machine) once its trial has
    reported an epoch. Worker B, starting its next trial, fails A's trial on its lost
    heartbeat, ends its MLflow run and runs it again; then a hopeless trial, worse than the
    median of the two before it, is pruned after its first epoch. `--best` writes the best
    trial's params into params.yaml and draws the study."""
    storage = open_storage(storage_url(repo), heartbeat=1, max_retry=1)
    study = optuna.create_study(storage=storage, study_name="shared", direction="minimize")
    study.enqueue_trial({"train.lr": GOOD})  # A's, lost
    study.enqueue_trial({"train.lr": OTHER_GOOD})  # B's first
    a = start_worker(repo, 1, "shared")
    wait_for(lambda trials: any(t.intermediate_values for t in trials), repo)
    b = start_worker(repo, 3, "shared")
    os.killpg(a.pid, signal.SIGKILL)
    a.wait()
    wait_for(lambda trials: len(trials) == 3, repo)  # B made the retry of A's trial
    study.enqueue_trial({"train.lr": HOPELESS})  # B's third, after two complete ones
    out, err = b.communicate(timeout=300)
    assert b.returncode == 0, err[-3000:]

    trials = load(repo, "shared").get_trials()
    states = {t.number: t.state.name for t in trials}
    assert states == {0: "FAIL", 1: "COMPLETE", 2: "COMPLETE", 3: "PRUNED"}, out
    assert trials[2].system_attrs.get("failed_trial") == 0  # the lost trial, run again
    assert trials[2].params == trials[0].params
    assert trials[3].user_attrs["pruned_at_epoch"] == 1 and "tune: trial 3 PRUNED" in out
    by_trial = {}
    for found in find_runs(repo):
        by_trial.setdefault(found.data.tags["optuna.trial"], []).append(found)
    assert {r.info.status for r in by_trial["0"]} == {"FAILED"}, "none left RUNNING"
    assert "heartbeat" in by_trial["0"][0].data.tags["failure_reason"]
    for number in ("1", "2"):
        (done,) = by_trial[number]
        assert done.info.status == "FINISHED" and done.data.tags["optuna.study"] == "shared"
        assert done.data.tags["dvc.exp_name"] == f"shared-trial-{number}"
        assert "val_mse" in done.data.metrics
    (pruned,) = by_trial["3"]
    assert pruned.info.status == "KILLED" and pruned.data.tags["optuna.pruned"] == "true"
    shown = experiments(repo)
    assert {"shared-trial-1", "shared-trial-2"} <= shown and "shared-trial-3" not in shown
    assert not list((repo / ".dvc" / "tmp" / "exps").glob("**/models/model.keras"))

    params_before = yaml.safe_load((repo / "params.yaml").read_text())
    best = run([*tune("--best", "--study-name", "shared")], repo)
    best_trial = min(trials[1:3], key=lambda t: t.value)
    assert f"tune: best trial {best_trial.number}: val_mse" in best.stdout
    written = yaml.safe_load((repo / "params.yaml").read_text())
    assert written["train"]["lr"] == best_trial.params["train.lr"]
    assert written["epochs"] == params_before["epochs"]
    for picture in ("history.png", "importances.png"):
        assert (repo / "tune" / picture).read_bytes()[:4] == b"\x89PNG"


def wait_for(condition, repo: Path, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition(load(repo, "shared").get_trials()):
            return
        time.sleep(0.5)
    raise AssertionError("the study did not get there in time")


@pytest.mark.browser
def test_make_tune_dashboard_shows_the_study_and_loads_nothing_off_host(tmp_path, browser):
    from .browser import free_port, process_group, wait_until_serving

    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=url, study_name="shown", direction="minimize")
    study.add_trial(
        optuna.trial.create_trial(
            params={"train.lr": 3e-3},
            distributions={"train.lr": optuna.distributions.FloatDistribution(1e-4, 1e-2)},
            value=107.5,
        )
    )
    port = free_port()
    args = ["make", "--no-print-directory", "-o", "setup", "tune-dashboard", f"PORT={port}"]
    log = tmp_path / "dashboard.log"
    command = [*args, f"TUNE_STORAGE={url}"]
    with process_group(command, log, cwd=REPO_ROOT, env=clean_env()) as dashboard:
        wait_until_serving(f"http://127.0.0.1:{port}/dashboard", dashboard, log)
        assert f"http://127.0.0.1:{port}" in log.read_text()  # loopback only
        browser.page.goto(f"http://127.0.0.1:{port}/dashboard")
        browser.page.get_by_text("1. shown").first.wait_for(timeout=60_000)
        browser.page.wait_for_timeout(2_000)  # late loads
    assert browser.off_host == []


def test_the_best_trials_keys_from_several_sections_become_one_preset():
    """A study over `train.*`, `model.*` and top-level keys (`--best` once stopped at the
    second section with KeyError: 'model')."""
    values = {"train.lr": 1e-3, "model.kernel_sizes": [5, 3], "train.loss": "mse", "epochs": 4}
    assert overrides_of(values) == {
        "train": {"lr": 1e-3, "loss": "mse"},
        "model": {"kernel_sizes": [5, 3]},
        "epochs": 4,
    }
