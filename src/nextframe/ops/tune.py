"""`nextframe tune`: an Optuna study of the params, shared by any number of workers through its
storage (a SQLite file on one machine, the team's PostgreSQL for many), each trial a DVC
experiment whose train stage reports `val_mse` after every epoch and is pruned by the study.

`nextframe tune --best` prints the best trial, writes its params into params.yaml (comments
and order kept, validated, as `make preset` does) and draws the study under `tune/`."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nextframe.errors import NextframeError
from nextframe.ops.trial import (
    OBJECTIVE,
    PRUNED_ATTR,
    PRUNER_ENV,
    PRUNERS,
    STORAGE_ENV,
    STUDY_ENV,
    TRIAL_ENV,
    make_pruner,
)
from nextframe.params import parse_params
from nextframe.presets import apply_overrides, merged

DEFAULT_STORAGE = "sqlite:///tune/study.db"
DEFAULT_SPACE = "tune/space.yaml"
DEFAULT_STUDY = "nextframe"
PLOTS_DIR = Path("tune")
DIRECTION = "minimize"  # val_mse


@dataclass(frozen=True)
class Dimension:
    """One params key and the values a trial may give it. Categorical choices are kept as
    JSON text: Optuna's choices are scalars, params such as `model.filters` are lists."""

    key: str
    kind: str  # float | int | categorical
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[str, ...] = ()

    def suggest(self, trial) -> Any:
        if self.kind == "categorical":
            return json.loads(trial.suggest_categorical(self.key, self.choices))
        if self.kind == "int":
            return trial.suggest_int(
                self.key, self.low, self.high, step=self.step or 1, log=self.log
            )
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def extremes(self) -> list[Any]:
        """The values that bound what a trial can give: each checked by the params schema."""
        if self.kind == "categorical":
            return [json.loads(choice) for choice in self.choices]
        return [self.low, self.high]


def decode(dimensions: list[Dimension], values: dict[str, Any]) -> dict[str, Any]:
    """A trial's stored params as params values (categorical JSON text read back)."""
    kinds = {d.key: d.kind for d in dimensions}
    return {
        key: json.loads(value) if kinds.get(key) == "categorical" else value
        for key, value in values.items()
    }


def nested(key: str, value: Any) -> dict:
    """`train.lr`, 1e-3 -> {"train": {"lr": 1e-3}}."""
    out: Any = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


def overrides_of(values: dict[str, Any]) -> dict:
    """Dotted keys and their values as one nested mapping of sections, as a preset is written:
    {"train.lr": 1e-3, "model.filters": [8]} -> {"train": {"lr": 1e-3}, "model": {...}}."""
    out: dict = {}
    for key, value in values.items():
        *sections, leaf = key.split(".")
        node = out
        for section in sections:
            node = node.setdefault(section, {})
        node[leaf] = value
    return out


def _has_key(params: dict, key: str) -> bool:
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return not isinstance(node, dict)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _dimension(key: str, entry: Any) -> Dimension:
    """One entry of the space file: {low, high[, log][, step]} or {choices: [...]}."""
    if not isinstance(entry, dict):
        raise ValueError("must be a mapping: {low: .., high: ..} or {choices: [..]}")
    unknown = set(entry) - {"low", "high", "log", "step", "choices"}
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
    if "choices" in entry:
        if set(entry) != {"choices"}:
            raise ValueError("choices go alone, without low/high/log/step")
        choices = entry["choices"]
        if not isinstance(choices, list) or not choices:
            raise ValueError("choices must be a non-empty list")
        texts = tuple(json.dumps(c) for c in choices)
        if len(set(texts)) != len(texts):
            raise ValueError("choices repeat a value")
        return Dimension(key, "categorical", choices=texts)
    if "low" not in entry or "high" not in entry:
        raise ValueError("needs low and high (or choices)")
    low, high, log, step = entry["low"], entry["high"], entry.get("log", False), entry.get("step")
    numbers = [v for v in (low, high, step) if v is not None]
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in numbers):
        raise ValueError("low, high and step must be numbers")
    if not isinstance(log, bool):
        raise ValueError("log must be true or false")
    if not low < high:
        raise ValueError(f"low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise ValueError(f"a log range needs low > 0, got {low}")
    if log and step is not None:
        raise ValueError("a log range takes no step")
    kind = "int" if all(_is_int(v) for v in numbers) else "float"
    if kind == "float":
        low, high = float(low), float(high)
        step = None if step is None else float(step)
    return Dimension(key, kind, low, high, log, step)


def load_space(path: Path, params: dict) -> list[Dimension]:
    """The search space file, each key checked against params.yaml and each bound (a range's
    ends, every choice) against the params schema: one line per mistake."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NextframeError(f"{path}: no such search space file") from None
    except yaml.YAMLError:
        raise NextframeError(f"{path}: not valid YAML") from None
    if not isinstance(raw, dict) or not raw:
        raise NextframeError(f"{path}: must map params keys (train.lr: ...) to their ranges")
    problems, dimensions = [], []
    for key, entry in raw.items():
        if not isinstance(key, str) or not _has_key(params, key):
            problems.append(f"{path}: {key} is not a key of params.yaml")
            continue
        try:
            dimension = _dimension(key, entry)
        except ValueError as exc:
            problems.append(f"{path}: {key}: {exc}")
            continue
        for value in dimension.extremes():
            try:
                parse_params(merged(params, nested(key, value)), f"{path}: {key} = {value!r}")
            except NextframeError as exc:
                problems.append(str(exc).splitlines()[0])
        dimensions.append(dimension)
    if problems:
        raise NextframeError("\n".join(problems))
    return dimensions


def _redacted(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def absolute(url: str) -> str:
    """A SQLite URL made absolute: each trial runs in a temporary copy of the repo."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        return f"sqlite:///{Path(url.removeprefix('sqlite:///')).resolve()}"
    return url


def open_storage(url: str, heartbeat: int, max_retry: int):
    """Optuna's RDB storage with a heartbeat: a trial whose worker stops beating for
    2 x `heartbeat` seconds is failed by the next worker to start a trial, its MLflow run
    ended FAILED, and the trial retried (up to `max_retry` times)."""
    import optuna
    import sqlalchemy

    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)

    def failed(study, trial) -> None:
        end_trial_runs(study.study_name, trial.number)
        retry(study, trial)

    try:
        with warnings.catch_warnings():  # the heartbeat is marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs={"pool_pre_ping": True},
                heartbeat_interval=heartbeat,
                grace_period=2 * heartbeat,
                heartbeat_stale_trial_callback=failed,
            )
    except (sqlalchemy.exc.SQLAlchemyError, ValueError, ImportError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NextframeError(f"--storage {_redacted(url)}: cannot open it ({reason})") from None


def open_study(storage, name: str, pruner: str, seed: int):
    """The study `name` in `storage`, made if new; one that minimises nothing else."""
    import optuna

    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        if summary.study_name == name and summary.direction.name.lower() != DIRECTION:
            raise NextframeError(
                f"study {name} exists with direction {summary.direction.name.lower()}; "
                f"tune minimises {OBJECTIVE}: give another --study-name"
            )
    return optuna.create_study(
        storage=storage,
        study_name=name,
        direction=DIRECTION,
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=make_pruner(pruner),
    )


def end_trial_runs(study: str, number: int) -> None:
    """End the MLflow runs a lost worker's trial left RUNNING: FAILED, with why."""
    import mlflow

    from nextframe.ops import tracking

    tracking.configure()
    client = mlflow.MlflowClient()
    experiment = mlflow.get_experiment_by_name(tracking.EXPERIMENT_NAME)
    query = f"tags.`optuna.study` = '{study}' and tags.`optuna.trial` = '{number}'"
    for run in client.search_runs([experiment.experiment_id], query):
        if run.info.status in ("RUNNING", "SCHEDULED"):
            reason = "its tune worker stopped (no Optuna heartbeat): the trial failed"
            client.set_tag(run.info.run_id, "failure_reason", reason)
            client.set_terminated(run.info.run_id, status="FAILED")


def experiment_name(study: str, number: int) -> str:
    """The DVC experiment of a trial (a valid git ref name)."""
    return f"{re.sub(r'[^A-Za-z0-9_-]+', '-', study).strip('-') or 'study'}-trial-{number}"


class TrialFailed(Exception):
    """The trial's experiment failed: the trial ends FAIL, the worker goes on."""


def set_arguments(values: dict[str, Any]) -> list[str]:
    """`-S key=value` for each value, in YAML (lists as [32, 32])."""
    args = []
    for key, value in values.items():
        text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
        args += ["-S", f"{key}={text}"]
    return args


def run_trial(
    trial, dimensions: list[Dimension], storage_url: str, pruner: str, target: str
) -> float:
    """One trial: its values as a DVC experiment up to `target`; the last epoch's `val_mse`."""
    import optuna

    study = trial.study
    values = {d.key: d.suggest(trial) for d in dimensions}
    for done in study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE]):
        if decode(dimensions, done.params) == values:  # DVC would restore it from its cache
            print(f"tune: trial {trial.number} has the params of trial {done.number}: its value")
            return done.value
    name = experiment_name(study.study_name, trial.number)
    trial.set_user_attr("dvc_experiment", name)
    print(f"tune: trial {trial.number} ({name}): {json.dumps(values)}", flush=True)
    env = os.environ | {
        STORAGE_ENV: storage_url,
        STUDY_ENV: study.study_name,
        TRIAL_ENV: str(trial.number),
        PRUNER_ENV: pruner,  # a pruner is not kept in the storage: the stage builds its own
    }
    # Workers on one clone each start `dvc exp run --temp`, which holds the repo's lock while
    # it copies the workspace: a worker waits for it rather than failing its trial after
    # DVC's default 3 s (two workers on 2 busy cores took longer).
    run = ["dvc", "--wait-for-lock", "exp", "run", "--temp"]
    command = [*run, "--name", name, *set_arguments(values), target]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    frozen = study._storage.get_trial(trial._trial_id)
    if PRUNED_ATTR in frozen.user_attrs:
        raise optuna.TrialPruned(f"pruned after epoch {frozen.user_attrs[PRUNED_ATTR]}")
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        last = (errors or result.stderr.strip().splitlines() or ["no output"])[-1]
        trial.set_user_attr("failure", f": {last}")
        raise TrialFailed(f"trial {trial.number}: dvc exp run --temp failed: {last}")
    if not frozen.intermediate_values:
        trial.set_user_attr("failure", ": restored from DVC's run cache, no epoch reported")
        raise TrialFailed(
            f"trial {trial.number}: no epoch reported {OBJECTIVE} (its train stage was "
            "restored from DVC's run cache: these params ran before, outside this study)"
        )
    return frozen.intermediate_values[max(frozen.intermediate_values)]


def tune(args: argparse.Namespace) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # each trial's end: `report` below
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    args.storage = absolute(args.storage)
    params = yaml.safe_load(Path(args.params).read_text(encoding="utf-8"))
    parse_params(params, str(args.params))  # the committed params themselves
    dimensions = load_space(Path(args.space), params)
    storage = open_storage(args.storage, args.heartbeat, args.max_retry)
    study = open_study(storage, args.study_name, args.pruner, params.get("seed", 0))
    print(
        f"tune: study {args.study_name} on {_redacted(args.storage)}: "
        f"{len(dimensions)} params, {args.trials or 'unlimited'} trial(s)"
        + (f" or {args.timeout} s" if args.timeout else "")
    )

    def objective(trial) -> float:
        return run_trial(trial, dimensions, args.storage, args.pruner, args.target)

    def report(study, trial) -> None:
        value = "" if trial.value is None else f" {OBJECTIVE} {trial.value:.4g}"
        why = trial.user_attrs.get("failure", "")
        print(f"tune: trial {trial.number} {trial.state.name}{value}{why}", flush=True)

    study.optimize(
        objective,
        n_trials=args.trials,
        timeout=args.timeout,
        catch=(TrialFailed,),
        callbacks=[report],
    )
    summarize(study)


def summarize(study) -> None:
    import optuna

    states = [t.state for t in study.get_trials(deepcopy=False)]
    counts = {s.name: states.count(s) for s in optuna.trial.TrialState if states.count(s)}
    done = ", ".join(f"{n} {state.lower()}" for state, n in counts.items())
    best = ""
    if counts.get("COMPLETE"):
        best = f"; best trial {study.best_trial.number}: {OBJECTIVE} {study.best_value:.4g}"
    print(f"tune: study {study.study_name}: {len(states)} trial(s), {done}{best}")


def best(args: argparse.Namespace) -> None:
    """The best trial: printed, its params written into params.yaml, the study drawn."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    args.storage = absolute(args.storage)
    params = yaml.safe_load(Path(args.params).read_text(encoding="utf-8"))
    dimensions = load_space(Path(args.space), params)
    storage = open_storage(args.storage, args.heartbeat, args.max_retry)
    try:
        study = optuna.load_study(study_name=args.study_name, storage=storage)
    except KeyError:
        raise NextframeError(f"no study {args.study_name} in {_redacted(args.storage)}") from None
    complete = study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE])
    if not complete:
        raise NextframeError(f"study {args.study_name} has no complete trial yet")
    trial = study.best_trial
    values = decode(dimensions, trial.params)
    changed = apply_overrides(overrides_of(values), Path(args.params), f"trial {trial.number}")
    experiment = trial.user_attrs.get("dvc_experiment")
    print(f"tune: best trial {trial.number}: {OBJECTIVE} {trial.value:.4g} ({experiment})")
    for key, value in values.items():
        print(f"  {key}: {json.dumps(value)}")
    print(f"{args.params}: {len(changed)} value(s) changed: {', '.join(changed) or 'none'}")
    for path in draw_study(study, PLOTS_DIR):
        print(f"tune: wrote {path}")


def draw_study(study, out: Path) -> list[Path]:
    """The optimisation history and, where two or more trials are complete, the params'
    importances, as PNGs (Optuna's own plots, drawn with matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import optuna
    from matplotlib import pyplot

    from nextframe.io import write_bytes

    plots = {"history.png": optuna.visualization.matplotlib.plot_optimization_history}
    complete = study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE])
    if len(complete) >= 2 and len({json.dumps(t.params, sort_keys=True) for t in complete}) > 1:
        plots["importances.png"] = optuna.visualization.matplotlib.plot_param_importances
    written = []
    for name, plot in plots.items():
        axes = plot(study)
        figure = axes.figure if hasattr(axes, "figure") else axes[0].figure
        figure.set_size_inches(8, 5)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
        pyplot.close(figure)
        write_bytes(out / name, buffer.getvalue())
        written.append(out / name)
    return written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", default=DEFAULT_SPACE, help="the search space (YAML)")
    parser.add_argument(
        "--storage",
        default=os.environ.get("NEXTFRAME_TUNE_STORAGE_URL", DEFAULT_STORAGE),
        help="Optuna's storage: a SQLite URL for one machine, the team's PostgreSQL URL for "
        f"many (default {DEFAULT_STORAGE})",
    )
    parser.add_argument("--study-name", default=DEFAULT_STUDY)
    parser.add_argument("--trials", type=int, default=None, help="trials this worker runs")
    parser.add_argument("--timeout", type=float, default=None, help="seconds, then stop")
    parser.add_argument("--pruner", choices=PRUNERS, default="median")
    parser.add_argument("--target", default="train", help="the stage each trial runs up to")
    parser.add_argument("--params", default="params.yaml", type=Path)
    parser.add_argument(
        "--heartbeat", type=int, default=30, help="seconds between a worker's heartbeats"
    )
    parser.add_argument("--max-retry", type=int, default=2, help="retries of a lost trial")
    parser.add_argument(
        "--best", action="store_true", help="write the best trial's params into params.yaml"
    )


def run(args: argparse.Namespace) -> None:
    if args.trials is not None and args.trials < 1:
        raise NextframeError(f"--trials must be at least 1, got {args.trials}")
    if args.timeout is not None and args.timeout <= 0:
        raise NextframeError(f"--timeout must be positive, got {args.timeout}")
    if args.heartbeat < 1:
        raise NextframeError(f"--heartbeat must be at least 1 s, got {args.heartbeat}")
    (best if args.best else tune)(args)
    sys.stdout.flush()
