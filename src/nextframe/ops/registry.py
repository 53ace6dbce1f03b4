"""The model registry: every trained predictor is a new version of `nextframe-convlstm`, logged
as the served pyfunc; evaluation moves the `champion` alias to a strictly better version; a
model named by path or MLflow URI is loaded in Keras safe mode.
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

import numpy as np

from nextframe.clips import FrameFormat
from nextframe.errors import NextframeError
from nextframe.ops import tracking

# Every trained model is a new version of this registered model; evaluation moves the alias
# to the best one (`models:/nextframe-convlstm@champion`).
REGISTERED_MODEL = "nextframe-convlstm"
CHAMPION_ALIAS = "champion"
# Radar models are judged by their rain rates' squared error, among radar models only: they
# take this alias, never `champion` (`make serve MODEL=models:/nextframe-convlstm@radar`).
RADAR_ALIAS = "radar"
# The code MLflow logs with the model and runs to load it (see `nextframe.ops.serving`).
SERVED_MODEL_CODE = str(Path(__file__).with_name("served_model.py"))
PREDICTOR_ARTIFACT = "predictor"  # the saved .keras predictor inside the logged model
# `models:/name@alias`, `runs:/id/model`, `m-...`: anything with a scheme is an MLflow URI.
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")


def log_trained_model(model) -> str:
    """Log the predictor as the served pyfunc (`nextframe.ops.serving`), its signature from
    the pyfunc's type hints and a request example, with pinned requirements, and register it
    as a new version of `REGISTERED_MODEL`; its number."""
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
    print(f"train: registered the model as {REGISTERED_MODEL} v{version}")
    return version


def request_example(frames: FrameFormat, horizon: int) -> tuple[list[str], dict[str, int]]:
    """A request MLflow stores with the model (the UI shows it; `serving_input_example.json`)
    and reads the params' schema from: one clip of black uint8 frames as a base64 `.npy`, and
    the horizon, by default the one the model was trained for."""
    from nextframe.clips import MIN_CONTEXT_FRAMES
    from nextframe.io import encode_npy

    if frames.is_rain:  # rain rates in mm/h, NaN outside the radar's domain
        clip = np.zeros((MIN_CONTEXT_FRAMES, frames.size, frames.size), np.float32)
        clip[:, 0, 0] = np.nan
        return [encode_npy(clip)], {"horizon": horizon}
    clip = np.zeros((MIN_CONTEXT_FRAMES, *frames.shape), np.uint8)
    return [encode_npy(clip)], {"horizon": horizon}


@dataclass(frozen=True)
class ChampionDecision:
    """Where the `champion` alias points after an evaluation, and why."""

    version: str  # the version just evaluated
    mse: float
    champion: str  # the champion's version now
    previous: str | None  # the champion's version before, None if there was none
    previous_mse: float | None

    @property
    def crowned(self) -> bool:
        return self.champion == self.version

    def describe(self) -> str:
        name = f"{REGISTERED_MODEL} v{self.version} (MSE {self.mse:.2f})"
        if self.previous is None:
            return f"{name} is the first champion"
        if self.previous == self.version:
            return f"{name} stays the champion"
        before = f"v{self.previous} (MSE {_format_mse(self.previous_mse)})"
        if self.crowned:
            return f"{name} is the new champion, better than {before}"
        return f"{name} is no better than the champion {before}, which stays"


def _format_mse(mse: float | None) -> str:
    return "not recorded" if mse is None else f"{mse:.2f}"


def _recorded_mse(client, run_id: str) -> float | None:
    """The run's `eval.model.mse`, None if it has none (or the run is gone)."""
    import mlflow

    try:
        return client.get_run(run_id).data.metrics.get("eval.model.mse")
    except mlflow.exceptions.MlflowException:
        return None


def crown_if_best(run_id: str, mse: float, alias: str | None = None) -> ChampionDecision:
    """Move the `champion` alias to the version the run registered if its closed-loop MSE
    beats the current champion's recorded `eval.model.mse`; a worse or equal one never
    takes it. The run's version must exist (the train stage registers it). `alias`: another
    alias than `champion`, for models that are judged apart (radar: `RADAR_ALIAS`)."""
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
    version = str(max(int(v.version) for v in versions))
    try:
        current = client.get_model_version_by_alias(REGISTERED_MODEL, alias)
    except mlflow.exceptions.MlflowException:
        current = None
    previous = None if current is None else str(current.version)
    previous_mse = None
    if current is not None and previous != version:
        previous_mse = _recorded_mse(client, current.run_id)
    better = previous_mse is None or not math.isfinite(previous_mse) or mse < previous_mse
    champion = previous
    if previous is None or (previous != version and better):
        client.set_registered_model_alias(REGISTERED_MODEL, alias, version)
        champion = version
    return ChampionDecision(version, mse, champion, previous, previous_mse)


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
