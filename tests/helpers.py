"""What many tests share: the one tiny-params set, a clean environment, running stages and
commands as DVC would, and reading back the MLflow runs they made."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
import yaml

from nextframe.ops import layout
from nextframe.presets import merged

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's dvc, mlflow and python
# Where the pipeline keeps each file (dvc.yaml's `vars`), relative to a workdir.
PATHS = {
    name: Path(path)
    for entry in yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["vars"]
    for name, path in entry["paths"].items()
}

# Small enough that the whole pipeline runs in about a minute on 2 cores. Short sequences
# (4 in, 4 out) also keep TensorFlow's tracing of the unrolled closed loop, most of a tiny
# run's time, short.
TINY = {
    "epochs": 1,
    "data": {"n_train": 16, "n_val": 8, "n_test": 8, "n_frames": 8, "n_context": 4},
    "model": {"filters": [4, 4], "kernel_sizes": [3, 3]},
    "train": {"batch_size": 8, "context_frames": 4},
    "render": {"n_sequences": 2, "scale": 2},
}


# The real radar composites of pysteps' example archive (../shared/data/pysteps-data).
SHARED_RADAR = REPO_ROOT.parent / "shared" / "data" / "pysteps-data"
# A tiny radar run: 4 frames in, 3 out, one window per event of the archive `radar_archive`
# writes, 32 px crops, a size-free normalisation.
RADAR_TINY = {
    "data": {
        "source": "radar",
        "n_frames": 7,
        "n_context": 4,
        "window_stride": 4,
        "radar": {"crop": 32, "crops_per_window": 4},
    },
    "model": {"normalization": "group", "norm_groups": 1},
    "train": {"loss": "balanced"},
    "render": {"n_sequences": 1},
}


def require_shared_radar() -> Path:
    """The shared MeteoSwiss archive, or a skip saying it is absent."""
    if not (SHARED_RADAR / "radar" / "mch").is_dir():
        pytest.skip(f"the shared radar archive is absent ({SHARED_RADAR})")
    return SHARED_RADAR


def radar_archive(
    dest: Path, frames_per_event: int = 8, network: str = "mch", events: int | None = None
) -> Path:
    """A small archive of `network` (MeteoSwiss's, or FMI's) in pysteps-data's layout: the
    first `frames_per_event` frames of each of the shared archive's events (one a folder), or
    of its first `events` (skips where it is absent)."""
    source = require_shared_radar() / "radar" / network
    folders = sorted({path.parent for path in source.rglob("*") if path.is_file()})[:events]
    for folder in folders:
        target = dest / "radar" / network / folder.relative_to(source)
        target.mkdir(parents=True)
        for frame in sorted(p for p in folder.iterdir() if p.is_file())[:frames_per_event]:
            shutil.copy2(frame, target / frame.name)
    return dest


def default_params() -> dict:
    return yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


def tiny_params(edits: dict | None = None) -> dict:
    """The repo's params.yaml with `TINY`, then `edits` (same nesting), written over it."""
    return merged(merged(default_params(), TINY), edits or {})


def write_params(workdir: Path, params: dict) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


# The tests' programs are tiny and compiled once each: XLA's CPU backend (JAX) without LLVM's
# optimisations compiles them a third faster (the JAX rerun of the model tests: 51 -> 35 s of
# CPU) and runs them no slower at these sizes. Added to whatever XLA_FLAGS a test gives.
TEST_XLA_FLAGS = "--xla_backend_optimization_level=0"


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without DVC's and MLflow's variables (a test's run must not land in
    the store of whatever started pytest), the venv first on PATH, unbuffered output, XLA
    compiling for compile time (`TEST_XLA_FLAGS`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "MLFLOW_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    env["PYTHONUNBUFFERED"] = "1"
    flags = extra.pop("XLA_FLAGS", env.get("XLA_FLAGS", ""))
    env.update(extra)
    env["XLA_FLAGS"] = f"{TEST_XLA_FLAGS} {flags}".strip()
    return env


def run(
    args: list[str], cwd: Path, check: bool = True, timeout: float = 900, **env: str
) -> subprocess.CompletedProcess:
    """A command in `cwd` with `clean_env`; on failure (with `check`) its output's tail."""
    result = subprocess.run(
        args, cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def git_commit(repo: Path, message: str) -> None:
    run(["git", "add", "-A"], repo)
    user = ["-c", "user.name=t", "-c", "user.email=t@t"]
    run(["git", *user, "commit", "-q", "--allow-empty", "-m", message], repo)


def tiny_repo(repo: Path, edits: dict | None = None) -> Path:
    """A git+DVC copy of this repo's tracked and new files, with tiny params (and `edits`),
    committed: what the e2e tests run the real `dvc` in."""
    files = run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], REPO_ROOT
    ).stdout.split()
    for name in files:
        if (REPO_ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, repo / name)
    write_params(repo, tiny_params(edits))
    run(["git", "init", "-q"], repo)
    git_commit(repo, "tiny copy")
    return repo


def pipeline() -> dict:
    return yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())


def stage_command(name: str, cwd: Path, *args: str) -> list[str]:
    """The stage's command from dvc.yaml as DVC runs it in `cwd`, by this venv's python with
    the repo's stage script; `args` go last (an option given again overrides)."""
    return [*layout.stage_command(name, REPO_ROOT, cwd), *args]


def start_stage(name: str, cwd: Path, *args: str, **env: str) -> subprocess.Popen:
    """A stage script in `cwd` as DVC runs it: its MLflow store is `cwd/mlflow.db`."""
    return subprocess.Popen(
        stage_command(name, cwd, *args),
        cwd=cwd,
        env=clean_env(DVC_ROOT=str(cwd), **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_stage(name: str, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return run(stage_command(name, cwd, *args), cwd, check=False, DVC_ROOT=str(cwd), **env)


def require_package_index(url: str = "https://pypi.org/simple/keras/") -> None:
    """Skip the calling test, with the reason, where the package index cannot be reached."""
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            response.read(1)
    except (OSError, urllib.error.URLError) as exc:
        pytest.skip(f"the package index cannot be reached ({url}: {exc})")


def make_recipe(target: str, *variables: str) -> str:
    """The shell command `make <target>` would run from this repo (with `VAR=value`s), its
    prerequisites taken as done: to run the Makefile's own command line elsewhere."""
    args = ["make", "--no-print-directory", "-n", "-o", "setup", target, *variables]
    args += ["-o", ".venv/.demo-installed"]
    return run(args, REPO_ROOT).stdout


@dataclass(frozen=True)
class Trained:
    """A workdir the real stages trained and evaluated a tiny model in (see `trained`)."""

    path: Path
    run_id: str
    params: dict

    @property
    def n_context(self) -> int:
        return self.params["data"]["n_context"]

    @property
    def horizon(self) -> int:
        return self.params["data"]["n_frames"] - self.n_context


def nextframe_command(*args: str) -> list[str]:
    """The `nextframe` console script of the venv."""
    return [str(BIN / "nextframe"), *args]


def store_client(root: Path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")


def find_runs(root: Path, filter_string: str = "") -> list:
    """The runs of the project's experiment in `root`'s store, newest first."""
    client = store_client(root)
    experiment = client.get_experiment_by_name("nextframe")
    return client.search_runs([experiment.experiment_id], filter_string=filter_string)


def recorded_run(root: Path):
    """The run that trained the model in `root`, as the train stage recorded it."""
    run_id = json.loads((root / PATHS["run_info"]).read_text())["run_id"]
    return store_client(root).get_run(run_id)
