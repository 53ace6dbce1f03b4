"""Domains: what differs between kinds of frames, one interface, implementations found by name.

A model's frames belong to one domain, read back from what the model records
(`FrameFormat.domain`); whatever depends on it asks for that domain by name, as pysteps'
`get_method` finds a method:

- `video` (`nextframe.domains.video`): frames in [0, 1] (Moving MNIST, your own clips);
- `rain` (`nextframe.domains.rain`): rain rates in mm/h with no-data, from a weather-radar
  archive, scored and drawn as nowcasters score and draw them, beside pysteps' nowcasts.

A domain is a package (or one module) registered in `DOMAINS`, with a part per job, each found
by `get_part(name, part)`:

- `domain`: `DOMAIN`, a `Domain` (below): data, the model's values and loss, serving;
- `evaluation`: `evaluate(model, windows, params, manifest, test_archives) -> (report, rows)`
  (`test_archives`: a folder of more archives' test windows, which a source may leave empty) and
  `summary(report) -> str`, for the evaluate stage;
- `render`: `render(model, windows, picked, params, manifest, gifs, grid) -> paths`;
- `predict`: `predict_files(args, frames, load_model)`, for `nextframe predict`;
- `demo`: `ABOUT`, `UPLOAD_REFUSAL`, `frame_shape(frames)`, `window(model, window)` and
  `panels(model, context, horizon, manifest)`, for `make demo`.

Each part is its own module so that a stage imports only the parts it runs (the train stage
no renderer, the render stage no scores): `tests/test_dvc_yaml.py` reads a call
`get_part(..., "render")` as an import of every domain's `render` part. A domain that is one
module (a test's, a plugin's) holds every part itself. A new domain is a package and one line
in `DOMAINS` (or a call to `register`).
"""

from __future__ import annotations

import importlib
import math
import numbers
from types import ModuleType
from typing import TYPE_CHECKING, Any

from nextframe.errors import NextframeError

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from nextframe.data.windows import WindowFile
    from nextframe.frames import FrameFormat
    from nextframe.model import NextFramePredictor
    from nextframe.params import DataParams, Params

# name -> the package (or module) that implements it
DOMAINS: dict[str, str] = {
    "video": "nextframe.domains.video",
    "rain": "nextframe.domains.rain",
}
PARTS = ("domain", "evaluation", "render", "predict", "demo")
# A longer served rollout is refused: it would hold a worker for minutes.
MAX_SERVED_HORIZON = 100


class Domain:
    """A domain's core part: what the data stages, the model, the trainer, the registry and
    the server ask of it. A stage, `ops` or the trainer calls these and names no domain.

    The report of the `evaluation` part has one shape in every domain: `model` and
    `baselines` (scores by name), `n_windows`, `n_context`, `horizon`; each of its per-step
    rows holds `step` (1 to the horizon), so `dvc plots`, MLflow and the registry read them
    alike. A domain may add keys (the rain domain's rows lead with `lead_minutes`, its
    report has `ensembles` where an ensemble was scored); a `diagrams` key (name -> rows, an
    ensemble's rank histograms, say) is taken out by the evaluate stage and written as a CSV
    each in `metrics/diagrams/`."""

    name: str = ""
    registry_alias: str = "champion"  # the alias its models compete for in the registry

    # -- data ---------------------------------------------------------------------------------
    def open_windows(self, path: Path, data: DataParams) -> WindowFile:
        """The split file `path` of windows of this domain, checked against `data` params."""
        raise NotImplementedError

    def check_data(self, frames: FrameFormat, shape: tuple[int, ...], model_path: Any) -> None:
        """Refuse (one line naming `model_path`) windows of `shape` a model of `frames` cannot
        read."""
        raise NotImplementedError

    # -- training (on the device, Keras ops) --------------------------------------------------
    def batch_values(self, batch: Any, frame_size: int) -> Any:
        """A training batch as the data pipeline hands it out -> float32 model values."""
        raise NotImplementedError

    def loss(self, kind: str, batch: Any, predictions: Any, frames: FrameFormat) -> Any:
        """The training loss of `predictions` of the frames after the first of `batch`; None:
        the Keras loss `kind` compiled into the trainer, on `batch_values`."""
        return None

    # -- evaluation -------------------------------------------------------------------------
    def registry_score(self, report: dict) -> float:
        """The number the registry compares, lower is better."""
        return float(report["model"]["mse"])

    def validation_score(self, model: NextFramePredictor, params: Params, windows: Any):
        """A trial's figure after each epoch, from the epoch's Keras logs (`nextframe tune`)."""
        return lambda logs: logs["val_loss"]

    # -- serving ------------------------------------------------------------------------------
    def request_example(self, frames: FrameFormat) -> np.ndarray:
        """One clip a served model of `frames` accepts (MLflow stores it with the model)."""
        raise NotImplementedError

    def format_key(self, frames: FrameFormat) -> str:
        """What, beyond shape, value range and stride, makes two models' scores comparable:
        a suffix of the registry's alias (empty: nothing)."""
        return ""

    def read_request(self, clips: np.ndarray, horizon: Any, model: NextFramePredictor) -> Any:
        """A served request's clips (N, T, ...) as the context `predict` takes; a bad one, or a
        bad horizon, is refused with one reason (a `NextframeError`)."""
        raise NotImplementedError

    def request_params(self) -> dict[str, Any]:
        """A served request's params beyond `horizon`, each at the value that asks for
        nothing (MLflow reads their schema from the logged example). Every domain takes
        `members`, so a model that gives none can say so rather than ignore it."""
        return {"members": 0}

    def read_members(
        self, params: dict[str, Any], context: Any, horizon: int, max_bytes: int
    ) -> Any:
        """What `predict` takes as `members` for a served request's params (None: one
        forecast), or one reason to refuse them; the answer must fit in `max_bytes`."""
        if params.get("members"):
            raise NextframeError(
                f"members: a {self.name} model gives one forecast; members come from radar "
                "models (data.source: radar)"
            )
        return None

    def predict(
        self, model: NextFramePredictor, context: np.ndarray, horizon: int, members: Any = None
    ) -> np.ndarray:
        """The closed-loop future of each context (N, T, ...), in this domain's units; with
        `members` (from `read_members`), each context's ensemble (N, M, horizon, ...)."""
        raise NotImplementedError

    def answer(self, future: np.ndarray, form: str, dtype: np.dtype, frames: FrameFormat) -> Any:
        """One clip's future in the form (`npy` or `lists`) and dtype its context came in."""
        raise NotImplementedError


def register(name: str, target: str) -> None:
    """Add a domain (the name of its package or module) to the table, or replace one."""
    DOMAINS[name] = target


def get_part(name: str, part: str) -> Any:
    """Part `part` of the domain called `name`: its package's module of that name, or the
    domain's module itself if it is one module."""
    if part not in PARTS:
        raise NextframeError(f"unknown part {part!r} of a domain (known: {', '.join(PARTS)})")
    try:
        target = DOMAINS[name]
    except KeyError:
        known = ", ".join(sorted(DOMAINS))
        raise NextframeError(f"unknown domain {name!r} (known: {known})") from None
    module: ModuleType = importlib.import_module(target)
    if hasattr(module, "__path__"):  # a package: one module a part
        return importlib.import_module(f"{target}.{part}")
    return module


def get_method(name: str) -> Domain:
    """The `Domain` (core part) of the domain called `name`."""
    return get_part(name, "domain").DOMAIN


def domain_of(frames: FrameFormat) -> Domain:
    """The domain of a model's (or the data's) frames."""
    return get_method(frames.domain)


def check_horizon(horizon: Any) -> int:
    """A served request's horizon: an integer from 1 to `MAX_SERVED_HORIZON`."""
    if isinstance(horizon, bool) or not isinstance(horizon, (int, float, numbers.Integral)):
        raise NextframeError(f"horizon must be an integer, got {horizon!r}")
    if not (math.isfinite(horizon) and horizon == int(horizon)):
        raise NextframeError(f"horizon must be an integer, got {horizon!r}")
    if not 1 <= horizon <= MAX_SERVED_HORIZON:
        raise NextframeError(f"horizon must be between 1 and {MAX_SERVED_HORIZON}, got {horizon}")
    return int(horizon)
