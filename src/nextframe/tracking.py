"""Everything MLflow: one store at the repo root, run names and tags that tie a run to git/DVC.

`dvc exp run --temp` and `--queue` run stages in `.dvc/tmp/exps/...`, where a relative
store would be lost with the temp dir; DVC still sets `DVC_ROOT` to the main repo, so the
store is resolved from there.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

EXPERIMENT_NAME = "nextframe"
STORE_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"


def repo_root(cwd: str | os.PathLike[str] | None = None) -> Path:
    """The main repo root: `DVC_ROOT` under dvc, else git's top level, else the cwd."""
    if os.environ.get("DVC_ROOT"):
        return Path(os.environ["DVC_ROOT"]).resolve()
    here = Path(cwd or Path.cwd())
    top = _git(["rev-parse", "--show-toplevel"], here)
    return Path(top).resolve() if top else here.resolve()


def tracking_uri(root: Path) -> str:
    """`MLFLOW_TRACKING_URI` if the user set one, else the sqlite store at the repo root."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / STORE_FILE}"


def artifact_location(root: Path) -> str:
    return (root / ARTIFACTS_DIR).as_uri()


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def run_tags(cwd: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Git commit and dirtiness of the tree the stage runs in, and the DVC experiment."""
    here = Path(cwd or Path.cwd())
    tags = {}
    commit = _git(["rev-parse", "HEAD"], here)
    if commit:
        tags["mlflow.source.git.commit"] = commit
        status = _git(["status", "--porcelain", "--untracked-files=no"], here)
        tags["git.dirty"] = str(bool(status)).lower()
    for env, tag in (
        ("DVC_EXP_NAME", "dvc.exp_name"),
        ("DVC_EXP_BASELINE_REV", "dvc.baseline_rev"),
    ):
        if os.environ.get(env):
            tags[tag] = os.environ[env]
    return tags


def run_name() -> str | None:
    """The DVC experiment name when there is one; MLflow picks a name otherwise."""
    return os.environ.get("DVC_EXP_NAME") or None


def configure(root: Path | None = None) -> str:
    """Point MLflow at the project store and make sure the experiment exists; its id."""
    import mlflow

    root = root or repo_root()
    uri = tracking_uri(root)
    mlflow.set_tracking_uri(uri)
    # A server keeps (and proxies) artifacts where it was told; a local path here would
    # leave them on this machine, out of every other client's reach.
    location = None if is_server(uri) else artifact_location(root)
    with _first_use_lock(uri):
        experiment_id = _experiment_id(location)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def _experiment_id(location: str | None) -> str:
    import mlflow

    experiment = mlflow.get_experiment_by_name(EXPERIMENT_NAME)
    if experiment is None:
        try:
            return mlflow.create_experiment(EXPERIMENT_NAME, artifact_location=location)
        except mlflow.exceptions.MlflowException:
            experiment = mlflow.get_experiment_by_name(EXPERIMENT_NAME)  # a parallel worker won
            if experiment is None:
                raise
    return experiment.experiment_id


@contextlib.contextmanager
def _first_use_lock(uri: str) -> Iterator[None]:
    """One process at a time through a sqlite store's first use.

    MLflow creates a new store's tables on first use; two processes doing it at once (queue
    workers on a fresh clone) leave the file broken for every later run."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    lock_path = Path(uri.removeprefix("sqlite:///") + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def tracked_run(
    params: dict[str, str], tags: dict[str, str], resume_run_id: str | None = None
) -> Iterator[str]:
    """An MLflow run that ends FINISHED, or FAILED with the reason as a tag on any error.

    With `resume_run_id` (a run an interruption ended), that run is continued instead.
    """
    import mlflow

    configure()
    if resume_run_id is not None and not _run_exists(resume_run_id):
        resume_run_id = None
    if resume_run_id is not None:
        started = mlflow.start_run(run_id=resume_run_id, tags=tags)
        if "failure_reason" in started.data.tags:
            mlflow.delete_tag("failure_reason")
    else:
        started = mlflow.start_run(run_name=run_name(), tags=tags)
    with started as run:
        mlflow.log_params(params)
        try:
            yield run.info.run_id
        except BaseException as exc:
            reason = f"{type(exc).__name__}: {exc}"[:4000]
            mlflow.set_tag("failure_reason", reason)
            mlflow.end_run(status="FAILED")
            raise


def _run_exists(run_id: str) -> bool:
    import mlflow

    try:
        mlflow.get_run(run_id)
    except mlflow.exceptions.MlflowException:
        return False
    return True


@contextlib.contextmanager
def resumed_run(run_id: str) -> Iterator[None]:
    """Re-open the training run to add evaluation results and renders to it."""
    import mlflow

    configure()
    with mlflow.start_run(run_id=run_id):
        yield


def log_evaluation(run_id: str, report: dict, rows: list[dict[str, float]]) -> None:
    """Overall metrics as `eval.<who>.<metric>` and per-step values as a metric history."""
    import mlflow

    flat = {f"eval.model.{k}": v for k, v in report["model"].items()}
    for name, values in report["baselines"].items():
        flat.update({f"eval.{name}.{k}": v for k, v in values.items()})
    with resumed_run(run_id):
        mlflow.log_metrics(flat)
        for row in rows:
            step = int(row["step"])
            mlflow.log_metrics(
                {f"eval_per_step.{k}": v for k, v in row.items() if k != "step"}, step=step
            )


def log_renders(run_id: str, paths: list[Path]) -> None:
    """Attach the rendered files to the run that trained the model."""
    import mlflow

    with resumed_run(run_id):
        for path in paths:
            mlflow.log_artifact(str(path), artifact_path="renders")
