"""Fixtures: the repo's own params.yaml as a dict, the tiny variant for fast runs, a tiny
model trained and evaluated by the real stages (once per session), and a headless browser
page that may load nothing from off this machine."""

from __future__ import annotations

import fcntl
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import helpers
from .browser import BrowserSession, chromium_session

REPO_ROOT = helpers.REPO_ROOT


@pytest.fixture
def default_params() -> dict:
    return helpers.default_params()


@pytest.fixture
def tiny_params() -> dict:
    return helpers.tiny_params()


@pytest.fixture
def browser() -> Iterator[BrowserSession]:
    """A page in headless chromium: `.requests` lists what it loaded, `.off_host` what was
    blocked because it would have left this machine, `.errors` its script errors."""
    with chromium_session() as session:
        yield session


@pytest.fixture(scope="session")
def trained(tmp_path_factory, worker_id) -> helpers.Trained:
    """A workdir where every stage ran with the tiny params: a model, its MLflow run in
    `mlflow.db`, registered as version 1 and made champion, renders, and the params keys each
    stage read (`reads-<stage>.json`). Tests may add runs and versions, but leave these outputs
    and the alias as they are.

    Built once for the whole `make test`: the first of pytest-xdist's workers to ask builds it
    under a lock in their common temporary folder, the others wait and take the same one."""
    common = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        common = common.parent
    workdir = common / "trained" / "work"
    built = workdir.parent / "built"
    with open(common / "trained.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not built.exists():
            shutil.rmtree(workdir.parent, ignore_errors=True)  # what a failed build left
            build_trained(workdir)
            built.touch()
    run_id = json.loads((workdir / helpers.PATHS["run_info"]).read_text())["run_id"]
    return helpers.Trained(Path(workdir), run_id, helpers.tiny_params())


def build_trained(workdir: Path) -> None:
    helpers.write_params(workdir, helpers.tiny_params())
    shutil.copy2(REPO_ROOT / "dvc.yaml", workdir)  # where predict and the demo find the paths
    for stage in ("fetch", "preprocess", "train", "evaluate", "render"):
        reads = str(workdir / f"reads-{stage}.json")
        result = helpers.run_stage(stage, workdir, NEXTFRAME_PARAMS_READS=reads)
        assert result.returncode == 0, f"{stage}: {result.stderr[-3000:]}"


# The longest test files, first: `make test`'s workers take files in this order, so none is
# left running alone at the end (the rest keep their collection order).
LONGEST_FIRST = [
    "test_radar_pipeline.py",
    "test_train_stage.py",
    "test_pipeline.py",
    "test_team.py",
    "test_jax_backend.py",
    "test_jax_pipeline.py",
    "test_folder_pipeline.py",
    "test_data_parallel.py",
    "test_cluster.py",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test on the session's trained model starts the real stages: integration too. The
    longest files go first."""
    for item in items:
        if "trained" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: within a file, and for the others, the order stays
