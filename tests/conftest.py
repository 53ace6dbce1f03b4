"""Fixtures: the repo's own params.yaml as a dict, the tiny variant for fast runs, a tiny
model trained and evaluated by the real stages (once per session), and a headless browser
page that may load nothing from off this machine."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
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
def trained(tmp_path_factory) -> helpers.Trained:
    """A workdir where every stage ran with the tiny params: a model, its MLflow run in
    `mlflow.db`, registered as version 1 and made champion, renders, and the params keys each
    stage read (`reads-<stage>.json`). Tests may add runs and versions, but leave these outputs
    and the alias as they are.

    Built once for the whole `make test`, in the background from the start of the session
    (see `pytest_collection_modifyitems`), while the workers run tests that need no model: a
    worker that asks for it waits only for what is left of the build."""
    home = trained_home(tmp_path_factory.getbasetemp())
    start_trained_build(home)  # a no-op where the session started it
    deadline = time.monotonic() + 1200
    while not (home / "built").exists():
        if (home / "failed").exists():
            pytest.fail(f"the trained fixture: {(home / 'failed').read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"the trained fixture: not built in 20 minutes ({home / 'build.log'})")
        time.sleep(0.5)
    workdir = home / "work"
    run_id = json.loads((workdir / helpers.PATHS["run_info"]).read_text())["run_id"]
    return helpers.Trained(workdir, run_id, helpers.tiny_params())


def trained_home(basetemp: Path) -> Path:
    """Where the trained workdir is built, in the session's common folder."""
    return common_folder(basetemp) / "trained"


def common_folder(basetemp: Path) -> Path:
    """The folder common to every pytest-xdist worker (each has its own basetemp in it)."""
    return basetemp.parent if basetemp.name.startswith("popen-gw") else basetemp


def pytest_sessionstart(session: pytest.Session) -> None:
    """Every JAX process the tests start (the pipeline, the cluster's processes, the model
    tests rerun on JAX) shares one compilation cache for the session: a program another
    process compiled already (the same model on the same devices) is read back, not compiled
    again. It starts empty each session, so no run depends on another's."""
    basetemp = session.config._tmp_path_factory.getbasetemp()
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(common_folder(basetemp) / "jax-cache"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


def start_trained_build(home: Path) -> None:
    """`tests/trained.py` in its own process, once for the session: the first to call this
    (under a lock in the workers' common folder) starts it, the others find it started."""
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(home.parent / "trained.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if home.exists():
            return
        home.mkdir()
        with open(home / "build.log", "w") as log:
            subprocess.Popen(
                [sys.executable, "-m", "tests.trained", str(home)],
                cwd=REPO_ROOT,
                env=helpers.clean_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )


# The longest test files, first: `make test`'s workers take files in this order, so none is
# left running alone at the end (the rest keep their collection order).
LONGEST_FIRST = [  # by their wall time in `make test` on 2 cores (Makefile: no reordering)
    "test_pipeline.py",
    "test_radar_pipeline.py",
    "test_cluster.py",
    "test_train_stage.py",
    "test_team.py",
    "test_tune.py",
    "test_folder_pipeline.py",
    "test_benchmarks.py",
    "test_model.py",
    "test_data_parallel.py",
    "test_jax_backend.py",
    "test_registry.py",
    "test_predict.py",
    "test_radar_windows.py",
    "test_folder_source.py",
]


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by these marks
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


def pytest_collection_finish(session: pytest.Session) -> None:
    """Where a selected test takes the trained model, its build starts now, in the
    background, while the first files (which need none) run."""
    if any("trained" in getattr(item, "fixturenames", ()) for item in session.items):
        start_trained_build(trained_home(session.config._tmp_path_factory.getbasetemp()))
