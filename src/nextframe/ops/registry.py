"""The model registry: every trained predictor is a new version of `nextframe-convlstm`, logged
as the served pyfunc and tagged with its frame format; evaluation moves the `champion` alias
to a strictly better version of the same frames, and each frame format's own alias
(`champion-64x64x1`) to the best of its kind; a model named by path or MLflow URI is loaded in
Keras safe mode.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from nextframe.domains import domain_of
from nextframe.errors import NextframeError
from nextframe.frames import FrameFormat
from nextframe.ops import tracking

# Every trained model is a new version of this registered model; evaluation moves the alias
# to the best one (`models:/nextframe-convlstm@champion`).
REGISTERED_MODEL = "nextframe-convlstm"
CHAMPION_ALIAS = "champion"
# A version's frame format (`FrameFormat.to_config`, as JSON), so it is judged among its kind.
FRAMES_TAG = "frames"
# The code MLflow logs with the model and runs to load it (see `nextframe.ops.serving`).
SERVED_MODEL_CODE = str(Path(__file__).with_name("served_model.py"))
PREDICTOR_ARTIFACT = "predictor"  # the saved .keras predictor inside the logged model
# `models:/name@alias`, `runs:/id/model`, `m-...`: anything with a scheme is an MLflow URI.
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")


def log_trained_model(model) -> str:
    """Log the predictor as the served pyfunc (`nextframe.ops.serving`), its signature from
    the pyfunc's type hints and a request example, with pinned requirements, and register it
    as a new version of `REGISTERED_MODEL`; its number."""
    import mlflow
    import mlflow.pyfunc

    from nextframe.model import save_predictor

    # MLflow warns that the signature's `Any` is not validated: it is meant, each clip is
    # checked by `nextframe.ops.serving` itself.
    with tempfile.TemporaryDirectory(prefix="nextframe-model-") as tmp:
        saved = Path(tmp) / "model.keras"
        save_predictor(model, saved)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=SERVED_MODEL_CODE,
            artifacts={PREDICTOR_ARTIFACT: str(saved)},
            input_example=request_example(model.frames, model.horizon),
            metadata={"frames": model.frames.to_config(), "horizon": model.horizon},
            pip_requirements=pinned_requirements(),
            registered_model_name=REGISTERED_MODEL,
        )
    version = str(info.registered_model_version)
    frames = json.dumps(model.frames.to_config(), sort_keys=True)
    mlflow.MlflowClient().set_model_version_tag(REGISTERED_MODEL, version, FRAMES_TAG, frames)
    print(f"train: registered the model as {REGISTERED_MODEL} v{version}")
    return version


def request_example(frames: FrameFormat, horizon: int) -> tuple[list[str], dict[str, int]]:
    """A request MLflow stores with the model (the UI shows it; `serving_input_example.json`)
    and reads the params' schema from: one clip its domain takes, as a base64 `.npy` (video:
    black uint8 frames, the fewest the model takes at its clips' own rate; rain: dry mm/h with
    a no-data pixel), the horizon, by default the one the model was trained for, and the
    domain's other params at the values that ask for nothing (`Domain.request_params`)."""
    from nextframe.io import encode_npy

    domain = domain_of(frames)
    params = {"horizon": horizon, **domain.request_params()}
    return [encode_npy(domain.request_example(frames))], params


def format_key(frames: FrameFormat) -> str:
    """What makes two models' MSEs comparable, as an alias suffix: the frames' size and
    channels (MSE sums over a frame's pixels), value range and stride, a radar model's rain
    scale. `64x64x1`, `32x32x3-stride3`, `64x64x1-range0to4095`."""
    key = f"{frames.size}x{frames.size}x{frames.channels}"
    if frames.value_range is not None:
        low, high = (
            f"{v:g}".replace("+", "").replace("-", "m").replace(".", "p")
            for v in frames.value_range
        )
        key += f"-range{low}to{high}"
    if frames.frame_stride > 1:
        key += f"-stride{frames.frame_stride}"
    return key + domain_of(frames).format_key(frames)


@dataclass(frozen=True)
class Contest:
    """One alias after an evaluation: who holds it, who held it before and their MSE."""

    alias: str
    holder: str | None  # the version holding it now
    previous: str | None  # the version that held it before, None if none did
    previous_mse: float | None


@dataclass(frozen=True)
class ChampionDecision:
    """Where the `champion` alias (and the alias of the model's frame format) point after an
    evaluation, and why."""

    version: str  # the version just evaluated
    mse: float
    champion: str | None  # the champion's version now
    previous: str | None  # the champion's version before, None if there was none
    previous_mse: float | None
    other_frames: str | None = None  # the champion's frame format, when it differs
    own: Contest | None = None  # the alias of the version's frame format

    @property
    def crowned(self) -> bool:
        return self.champion == self.version

    def describe(self) -> str:
        name = f"{REGISTERED_MODEL} v{self.version} (MSE {self.mse:.2f})"
        if self.other_frames is not None and self.own is not None:
            return (
                f"{name} takes other frames than the champion v{self.previous} "
                f"({self.other_frames}), which stays; among its own frames it "
                f"{_outcome(self.version, self.own)} ({REGISTERED_MODEL}@{self.own.alias})"
            )
        if self.previous is None:
            return f"{name} is the first champion"
        if self.previous == self.version:
            return f"{name} stays the champion"
        before = f"v{self.previous} (MSE {_format_mse(self.previous_mse)})"
        if self.crowned:
            return f"{name} is the new champion, better than {before}"
        return f"{name} is no better than the champion {before}, which stays"


def _outcome(version: str, contest: Contest) -> str:
    if contest.previous is None:
        return "is the first champion"
    if contest.previous == version:
        return "stays the champion"
    before = f"v{contest.previous} (MSE {_format_mse(contest.previous_mse)})"
    if contest.holder == version:
        return f"is the new champion, better than {before}"
    return f"is no better than {before}, which stays"


def _format_mse(mse: float | None) -> str:
    return "not recorded" if mse is None else f"{mse:.2f}"


def _recorded_mse(client, run_id: str) -> float | None:
    """The run's `eval.model.mse`, None if it has none (or the run is gone)."""
    import mlflow

    try:
        return client.get_run(run_id).data.metrics.get("eval.model.mse")
    except mlflow.exceptions.MlflowException:
        return None


def version_frames(client, version) -> str | None:
    """The `format_key` of a registered version: from its tag, else from the metadata logged
    with it (versions registered before the tag); None if neither can be read."""
    import mlflow

    config = None
    if FRAMES_TAG in version.tags:
        config = json.loads(version.tags[FRAMES_TAG])
    else:
        try:
            info = mlflow.models.get_model_info(f"models:/{REGISTERED_MODEL}/{version.version}")
            config = (info.metadata or {}).get("frames")
        except (mlflow.exceptions.MlflowException, OSError):
            config = None
    if config is None:
        return None
    try:
        return format_key(FrameFormat.from_config(config))
    except (KeyError, TypeError, ValueError):
        return None


def _aliased(client, alias: str):
    import mlflow

    try:
        return client.get_model_version_by_alias(REGISTERED_MODEL, alias)
    except mlflow.exceptions.MlflowException:
        return None


def _contest(client, alias: str, version: str, mse: float, current) -> Contest:
    """Move `alias` to `version` if no version holds it or its MSE beats the holder's
    recorded `eval.model.mse` (a worse or equal one never takes it)."""
    previous = None if current is None else str(current.version)
    previous_mse = None
    if current is not None and previous != version:
        previous_mse = _recorded_mse(client, current.run_id)
    better = previous_mse is None or not math.isfinite(previous_mse) or mse < previous_mse
    holder = previous
    if previous is None or (previous != version and better):
        client.set_registered_model_alias(REGISTERED_MODEL, alias, version)
        holder = version
    return Contest(alias, holder, previous, previous_mse)


def crown_if_best(run_id: str, mse: float, alias: str | None = None) -> ChampionDecision:
    """Move the `champion` alias to the version the run registered if it takes the same
    frames as the champion (`format_key`) and its closed-loop MSE beats the champion's
    recorded `eval.model.mse`; a worse or equal one never takes it, nor one of other frames
    (MSEs over other frames do not compare). Each frame format's own alias (`champion-<key>`)
    moves the same way among the versions of that format, so the best model of every kind
    can be served. The run's version must exist (the train stage registers it). `alias`:
    another alias than `champion`, for models that are judged apart (a domain's
    `registry_alias`: radar models take `radar`).
    A version whose frames cannot be read is judged by its MSE alone, as before formats
    were recorded."""
    alias = CHAMPION_ALIAS if alias is None else alias
    import mlflow

    tracking.configure()
    client = mlflow.MlflowClient()
    versions = client.search_model_versions(f"name = '{REGISTERED_MODEL}' and run_id = '{run_id}'")
    if not versions:
        raise NextframeError(
            f"no version of the registered model {REGISTERED_MODEL} comes from run {run_id}: "
            "run the train stage again (`dvc repro --force train`)"
        )
    evaluated = max(versions, key=lambda v: int(v.version))
    version = str(evaluated.version)
    frames = version_frames(client, evaluated)
    own = None
    if frames is not None:
        own_alias = f"{alias}-{frames}"
        own = _contest(client, own_alias, version, mse, _aliased(client, own_alias))
    current = _aliased(client, alias)
    champion_frames = None
    if current is not None and str(current.version) != version:
        champion_frames = version_frames(client, current)
    if frames is not None and champion_frames is not None and champion_frames != frames:
        previous = str(current.version)
        return ChampionDecision(
            version, mse, previous, previous, None, other_frames=champion_frames, own=own
        )
    main = _contest(client, alias, version, mse, current)
    return ChampionDecision(version, mse, main.holder, main.previous, main.previous_mse, own=own)


def pinned_requirements() -> list[str]:
    """The versions running now, so MLflow needn't infer them (slow) to log the model:
    Keras, numpy and the backend that trained it."""
    from importlib.metadata import PackageNotFoundError, version

    import keras

    backend_packages = {
        "tensorflow": ("tensorflow-cpu", "tensorflow"),
        "jax": ("jax", "jaxlib"),
        "torch": ("torch",),
    }
    pins = []
    for name in ("keras", "numpy", *backend_packages.get(keras.backend.backend(), ())):
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return pins


def frame_format_of(path: Path) -> FrameFormat:
    """The frames a saved `.keras` predictor takes, read from its config without Keras (so a
    clip can be checked against it before the backend loads)."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))["config"]
        if "frames" in config:
            return FrameFormat.from_config(config["frames"])
        size = int(config["build_config"]["input_shape"][-2])  # saved before frames were
        return FrameFormat(size, 1)
    except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as exc:
        raise NextframeError(f"{path}: not a saved nextframe model ({exc})") from None


def is_model_uri(spec: str) -> bool:
    return bool(_URI.match(spec))


def load_model(spec: str):
    """A predictor from a `.keras` path or an MLflow model URI, loaded in Keras safe mode:
    from the registry only the saved predictor is read, no code the model carries is run."""
    from nextframe.model import load_predictor

    if not is_model_uri(spec):
        if not Path(spec).is_file():
            raise NextframeError(f"{spec}: model file not found (run `make repro` first?)")
        return load_predictor(spec)

    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a few small files
    store = tracking.tracking_uri(tracking.repo_root())
    with tempfile.TemporaryDirectory(prefix="nextframe-model-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=spec, dst_path=tmp, tracking_uri=store
            )
        except mlflow.exceptions.MlflowException as exc:
            first_line = str(exc.message).splitlines()[0]
            raise NextframeError(f"{spec}: not found in {store} ({first_line})") from None
        predictors = sorted(Path(local).glob("artifacts/*.keras"))
        if len(predictors) != 1:
            raise NextframeError(f"{spec}: not a nextframe model (no saved predictor in it)")
        return load_predictor(predictors[0])
