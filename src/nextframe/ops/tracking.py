"""Everything MLflow: one store at the repo root, run names and tags that tie a run to git/DVC.

`dvc exp run --temp` and `--queue` run stages in `.dvc/tmp/exps/...`, where a relative
store would be lost with the temp dir; DVC still sets `DVC_ROOT` to the main repo, so the
store is resolved from there.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

EXPERIMENT_NAME = "nextframe"
# What the experiment holds, as MLflow's UI reads it: model training, so the experiment opens
# on its runs table (without it, MLflow 3 opens on the GenAI overview of traces).
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}
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


def device_tags(devices: list[str]) -> dict[str, str]:
    """Which device trained: `device` (e.g. "1 x NVIDIA H200 (gpu)", "2 x cpu"), and the
    Keras backend."""
    import keras

    from nextframe.devices import describe_devices

    return {
        "device": describe_devices(devices),
        "device_count": str(len(devices)),
        "keras_backend": keras.backend.backend(),
    }


def run_name(tags: dict[str, str], now: float | None = None) -> str:
    """The DVC experiment's name under `dvc exp run`; else the commit and the UTC time
    (`repro-3d0bfdf-20261126-015312`), so plain `dvc repro` runs tell apart in the list.
    MLflow's own random names come from the seeded random state: the same in every run."""
    if os.environ.get("DVC_EXP_NAME"):
        return os.environ["DVC_EXP_NAME"]
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    commit = tags.get("mlflow.source.git.commit", "")[:7]
    dirty = "+" if tags.get("git.dirty") == "true" else ""
    return f"repro-{commit}{dirty}-{stamp}" if commit else f"repro-{stamp}"


def run_id_of(path: Path) -> str:
    """The MLflow run the train stage recorded in `path` (its run info file)."""
    from nextframe.errors import NextframeError
    from nextframe.io import load_json

    info = load_json(path)
    if not isinstance(info, dict) or not isinstance(info.get("run_id"), str):
        raise NextframeError(f"{path}: names no MLflow run (run the train stage again)")
    return info["run_id"]


def current_uri() -> str:
    """The tracking URI the active configuration points at."""
    import mlflow

    return mlflow.get_tracking_uri()


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
            return mlflow.create_experiment(
                EXPERIMENT_NAME, artifact_location=location, tags=EXPERIMENT_TAGS
            )
        except mlflow.exceptions.MlflowException:
            experiment = mlflow.get_experiment_by_name(EXPERIMENT_NAME)  # a parallel worker won
            if experiment is None:
                raise
    for key, value in EXPERIMENT_TAGS.items():  # a store from before the tag existed
        if experiment.tags.get(key) != value:
            mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id, key, value)
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
        started = mlflow.start_run(run_name=run_name(tags), tags=tags)
    with started as run:
        mlflow.log_params(params)
        try:
            yield run.info.run_id
        except BaseException as exc:
            # An error may say how its run ends (a pruned trial: KILLED, tagged so).
            reason = f"{type(exc).__name__}: {exc}"[:4000]
            mlflow.set_tags({"failure_reason": reason, **getattr(exc, "mlflow_tags", {})})
            mlflow.end_run(status=getattr(exc, "mlflow_status", "FAILED"))
            raise


def end_abandoned_run(run_id: str, reason: str) -> None:
    """End a run that an interruption left RUNNING and nothing will resume: FAILED, with why."""
    import mlflow

    configure()
    client = mlflow.MlflowClient()
    try:
        run = client.get_run(run_id)
    except mlflow.exceptions.MlflowException:
        return
    if run.info.status in ("RUNNING", "SCHEDULED"):
        client.set_tag(run_id, "failure_reason", reason)
        client.set_terminated(run_id, status="FAILED")
        print(f"train: ended the abandoned MLflow run {run_id} as FAILED ({reason})")


def _run_exists(run_id: str) -> bool:
    import mlflow

    try:
        mlflow.get_run(run_id)
    except mlflow.exceptions.MlflowException:
        return False
    return True


@contextlib.contextmanager
def training_run(
    params: dict[str, str],
    tags: dict[str, str],
    resume_run_id: str | None,
    abandoned: tuple[str, str] | None,
    dataset: dict[str, str],
    predictor,
) -> Iterator[str]:
    """The train stage's MLflow run, its id yielded: a new one, or `resume_run_id`, the run an
    interruption left (the `abandoned` run, whose backup was discarded, ends FAILED first:
    run id, reason; see `nextframe.resume.OpenedBackup`). It records
    `params`, `tags`, the training `dataset` (`log_training_data`) and the architecture;
    `epoch_logger` is the Keras callback for the epochs."""
    if abandoned is not None:
        run_id, reason = abandoned
        end_abandoned_run(run_id, f"abandoned: {reason} before it was resumed")
    with tracked_run(params, tags, resume_run_id) as run_id:
        log_training_data(**dataset)
        log_architecture(predictor)
        yield run_id


def mark_resumed(first_epoch: int | None) -> None:
    """Tag the active run with the epoch a resumed training started from (1-based)."""
    import mlflow

    if first_epoch is not None:
        mlflow.set_tag("resumed_at_epoch", str(first_epoch + 1))


@contextlib.contextmanager
def resumed_run(run_id: str) -> Iterator[None]:
    """Re-open the training run to add evaluation results and renders to it."""
    import mlflow

    configure()
    with mlflow.start_run(run_id=run_id):
        yield


def _numbers(values: dict, prefix: str) -> dict[str, float]:
    """Nested scores flattened to dotted metric names (`eval.model.at_30min.csi_1`)."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_numbers(value, f"{prefix}{key}."))
        elif isinstance(value, int | float):
            flat[f"{prefix}{key}"] = float(value)
    return flat


def log_evaluation(
    run_id: str,
    report: dict,
    rows: list[dict[str, float]],
    diagrams: dict[str, list[dict[str, float]]] | None = None,
) -> None:
    """Overall metrics as `eval.<who>.<metric>` (an ensemble's too) and per-step values as a
    metric history, stepped by each row's `step` (every domain's rows have one; a radar
    nowcast's lead time in minutes is logged beside it); each diagram (an ensemble's rank
    histograms, reliability diagrams) as a figure and its rows, under `diagrams/`."""
    import mlflow

    flat = _numbers(report["model"], "eval.model.")
    for name, values in {**report["baselines"], **report.get("ensembles", {})}.items():
        flat.update(_numbers(values, f"eval.{name}."))
    with resumed_run(run_id):
        mlflow.log_metrics(flat)
        for row in rows:
            step = int(row["step"])
            mlflow.log_metrics(
                {f"eval_per_step.{k}": v for k, v in row.items() if k != "step"}, step=step
            )
        for name, diagram_rows in (diagrams or {}).items():
            if diagram_rows:
                mlflow.log_figure(_diagram_figure(name, diagram_rows), f"diagrams/{name}.png")


DIAGRAM_Y_LABELS = {
    "rankhist": "share of observations",
    "reliability": "observed frequency",
    "spectra": "power, dB of (mm/h)^2",
}


def _diagram_figure(name: str, rows: list[dict[str, float]]):
    """A diagram's rows as a matplotlib figure: the first column along x, each other column a
    line (bars for a rank histogram)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    x_key, *columns = rows[0]
    x = [row[x_key] for row in rows]
    figure, axes = pyplot.subplots(figsize=(7, 4))
    width = 0.8 / max(1, len(columns))
    for number, column in enumerate(columns):
        values = [row[column] for row in rows]
        if name == "rankhist":
            axes.bar(
                [v + (number - (len(columns) - 1) / 2) * width for v in x],
                values,
                width,
                label=column,
            )
        else:
            axes.plot(
                x, values, marker="o", label=column, linestyle="--" if column == "perfect" else "-"
            )
    axes.set_xlabel(x_key)
    axes.set_ylabel(DIAGRAM_Y_LABELS.get(name, ""))
    if name == "spectra":
        axes.set_xscale("log")
        axes.invert_xaxis()  # large scales left, small right, as spectra are read
    axes.set_title(name)
    axes.legend(fontsize="small", ncol=2)
    figure.tight_layout()
    pyplot.close(figure)
    return figure


def log_renders(run_id: str, paths: list[Path]) -> None:
    """Attach the rendered files to the run that trained the model."""
    import mlflow

    with resumed_run(run_id):
        for path in paths:
            mlflow.log_artifact(str(path), artifact_path="renders")


def log_training_data(
    name: str,
    digest: str,
    source: str,
    clips: dict | None = None,
    windows: dict | None = None,
    events: dict | None = None,
    archives: dict | None = None,
) -> None:
    """Record the training data as an MLflow dataset input, named and digested by the
    preprocess manifest: for a folder of clips, its name, the digest of its clip list and
    contents, and the clips and windows of each split as the dataset's profile; for a radar
    archive, the events (start times) and windows of each split, and each more archive's
    events of each split (`data.radar.archives`)."""
    import mlflow
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.sources import LocalArtifactDatasetSource

    profile = {"clips": clips, "windows": windows} if clips is not None else None
    if events is not None:
        profile = {"events": events, "windows": windows}
        if archives:
            profile["archives"] = archives

    class _Profiled(MetaDataset):  # MetaDataset records no profile of its own
        @property
        def profile(self) -> dict | None:
            return profile

        def to_dict(self) -> dict[str, str]:
            extra = {"profile": json.dumps(profile)} if profile is not None else {}
            return super().to_dict() | extra

    dataset = _Profiled(LocalArtifactDatasetSource(source), name=name, digest=digest[:16])
    mlflow.log_input(dataset, context="training")


def log_architecture(model) -> None:
    """The predictor's parameter count (a param) and `model.summary()` (an artifact)."""
    import mlflow

    lines: list[str] = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    mlflow.log_param("params_count", model.count_params())
    mlflow.log_text("\n".join(lines) + "\n", "predictor_summary.txt")


def epoch_logger():
    """The Keras callback that logs every epoch's metrics to the active run."""
    import mlflow.keras

    return mlflow.keras.MlflowCallback()
