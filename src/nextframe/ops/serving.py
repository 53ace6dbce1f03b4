"""The model MLflow logs, registers and serves: a pyfunc around the compiled closed-loop
rollout, so the horizon is a request parameter (`params: {"horizon": N}`), which Keras' own
flavour (a plain `model.predict`) cannot take.

Its signature comes from `predict`'s type hints (a list of clips), which tells MLflow's scoring
server to hand the request's `inputs` over as parsed, without the per-number copy and cast a
tensor signature costs (~0.5 s for one 10-frame clip as nested lists); every clip is checked
here instead, and a bad one is answered 400 with the reason while the server goes on serving.
A clip is either nested lists (T, H, W, C), floats in [0, 1] or integers 0-255, or a base64
string of a `.npy` file (uint8 or float): the compact form, ~4x smaller than the JSON numbers
and decoded at memory speed. Each clip's future comes back in the form its context came in.
A radar model takes rain rates in mm/h (T, H, W) of any domain size, NaN outside the domain
(a base64 float32 `.npy`, as JSON has no NaN), and answers in mm/h the same way.

It is logged as code (`served_model.py`, MLflow's models from code), not pickled, and it
loads the saved predictor in Keras safe mode.
"""

from __future__ import annotations

import gc
import os
from typing import Any

import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PythonModel

from nextframe.clips import MIN_CONTEXT_FRAMES, FrameFormat, ReadNotes, to_unit, to_unit_range
from nextframe.errors import NextframeError
from nextframe.io import decode_npy, encode_npy
from nextframe.ops.registry import PREDICTOR_ARTIFACT

# A longer rollout is refused: it would hold a worker for minutes.
MAX_SERVED_HORIZON = 100


def _as_array(clip: Any, index: int) -> tuple[np.ndarray, str]:
    """One clip of the request as an array, and the form it came in: `npy` or `lists`."""
    if isinstance(clip, str):
        try:
            return decode_npy(clip), "npy"
        except NextframeError as exc:
            raise NextframeError(f"clip {index}: {exc}") from None
    try:
        frames = np.asarray(clip)
    except ValueError:
        frames = np.asarray(clip, dtype=object)
    if frames.dtype.kind in "iu":  # JSON integers: frames of 0-255
        if frames.size and (frames.min() < 0 or frames.max() > 255):
            raise NextframeError(f"clip {index}: integer frames must lie in 0-255")
        return frames.astype(np.uint8), "lists"
    if frames.dtype.kind != "f":
        got = "ragged or mixed lists" if frames.dtype.kind == "O" else str(frames.dtype)
        raise NextframeError(
            f"clip {index}: must be nested lists of numbers (T, H, W, C) of one shape or a "
            f"base64 .npy, got {got}"
        )
    return frames, "lists"


def check_request(context: np.ndarray, horizon: int, frames: FrameFormat) -> np.ndarray:
    """The context as the model's float32 frames in [0, 1], or one reason to refuse it: too
    few frames, frames of another shape, values outside [0, 1] (or the model's value range)
    or not finite, a horizon out of range."""
    if not 1 <= horizon <= MAX_SERVED_HORIZON:
        raise NextframeError(f"horizon must be between 1 and {MAX_SERVED_HORIZON}, got {horizon}")
    expected = f"(N, T, {', '.join(map(str, frames.shape))})"
    if context.ndim != 5 or context.shape[0] < 1 or context.shape[1] < MIN_CONTEXT_FRAMES:
        raise NextframeError(
            f"context must be {expected} with N >= 1 clips of T >= {MIN_CONTEXT_FRAMES} "
            f"frames, got shape {context.shape}"
        )
    if context.shape[2:] != frames.shape:
        raise NextframeError(f"context must be {expected}, got shape {context.shape}")
    return to_unit(to_unit_range(context, frames, "context", ReadNotes()))


def check_rain_request(context: np.ndarray, horizon: int, patch_size: int) -> np.ndarray:
    """A radar model's request: rain rates in mm/h (N, T, H, W) or (N, T, H, W, 1) of any
    domain size, NaN outside the domain; as float32 (N, T, H, W), or one reason to refuse it."""
    if not 1 <= horizon <= MAX_SERVED_HORIZON:
        raise NextframeError(f"horizon must be between 1 and {MAX_SERVED_HORIZON}, got {horizon}")
    if context.ndim == 5 and context.shape[-1] == 1:
        context = context[..., 0]
    expected = "(N, T, H, W) rain rates in mm/h (NaN outside the radar's domain)"
    if context.ndim != 4 or context.shape[0] < 1 or context.shape[1] < MIN_CONTEXT_FRAMES:
        raise NextframeError(
            f"context must be {expected} with N >= 1 clips of T >= {MIN_CONTEXT_FRAMES} "
            f"frames, got shape {context.shape}"
        )
    if min(context.shape[2:]) < patch_size:
        raise NextframeError(
            f"frames must be at least {patch_size}x{patch_size} pixels, got {context.shape[2:]}"
        )
    if context.dtype.kind != "f":
        raise NextframeError(f"context must be {expected} as floats, got {context.dtype}")
    rain = context.astype(np.float32)
    if np.isinf(rain).any() or (rain < 0).any():
        raise NextframeError("rain rates must be >= 0 mm/h, finite or NaN (no data)")
    return rain


def _rain_answer(future_mmh: np.ndarray, form: str) -> Any:
    """A radar nowcast in mm/h: a base64 .npy (NaN outside the domain) or lists (null there)."""
    if form == "npy":
        return encode_npy(future_mmh)
    return [
        [[None if np.isnan(v) else float(v) for v in row] for row in frame] for frame in future_mmh
    ]


def read_request(model_input: Any) -> tuple[np.ndarray, list[str]]:
    """The request's clips as one (N, T, H, W, C) array, and the form each came in (`npy` or
    `lists`). A model logged with a tensor signature (before this one) is handed one array."""
    if isinstance(model_input, dict) and "context" in model_input:
        model_input = model_input["context"]
    if isinstance(model_input, np.ndarray):
        return model_input, ["lists"] * len(model_input)
    if not isinstance(model_input, list) or not model_input:
        raise NextframeError("inputs must be a list of clips, one or more")
    clips, forms = zip(*(_as_array(c, i) for i, c in enumerate(model_input)), strict=True)
    shapes = {c.shape for c in clips}
    if len(shapes) > 1:
        raise NextframeError(f"the clips of one request must have one shape, got {sorted(shapes)}")
    dtypes = {str(c.dtype) for c in clips}
    if len(dtypes) > 1:
        raise NextframeError(f"the clips of one request must have one dtype, got {sorted(dtypes)}")
    return np.stack(clips), list(forms)


def _answer(future: np.ndarray, form: str, dtype: np.dtype, frames: FrameFormat) -> Any:
    """One clip's predicted frames (float32 in [0, 1]) in the form and dtype its context came
    in: uint8 frames get uint8 frames back, float frames float32 (in the model's units)."""
    from nextframe.clips import from_unit

    if dtype == np.uint8:
        future = np.rint(np.clip(future, 0.0, 1.0) * 255.0).astype(np.uint8)
    else:
        future = from_unit(future, frames)
    return encode_npy(future) if form == "npy" else future.tolist()


def _limit_backend_threads(threads: int) -> None:
    """Each of `make serve`'s workers computes on `threads` threads (0: the backend's default,
    all cores), so that workers answering at once share the cores rather than oversubscribe
    them. TensorFlow only; it must happen before the backend's first op."""
    import keras

    if threads > 0 and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


class RolloutModel(PythonModel):
    """A list of clips, each (T, H, W, C) context frames -> a list of the next `horizon`
    frames of each (horizon, H, W, C), predicted closed loop, in the form each clip came in."""

    def load_context(self, context) -> None:
        _limit_backend_threads(int(os.environ.get("NEXTFRAME_BACKEND_THREADS") or 0))
        from nextframe.model import load_predictor
        from nextframe.rollout import compiled_rollout

        self.predictor = load_predictor(context.artifacts[PREDICTOR_ARTIFACT])
        compiled_rollout(self.predictor).warm_up()  # compiled before the first request
        # Keep the collector off the ~10^5 objects the backend holds from here on: every
        # request allocates thousands of lists, and each collection they trigger would scan
        # them all again (0.4 s of a nested-list request's 0.6 s).
        gc.freeze()

    def predict(
        self, context, model_input: list[Any], params: dict[str, Any] | None = None
    ) -> list[Any]:
        from nextframe.rollout import predict_future

        frames = self.predictor.frames
        horizon = (params or {}).get("horizon", self.predictor.horizon)
        if frames.is_rain:
            return self._nowcast(model_input, horizon)
        try:
            clips, forms = read_request(model_input)
            unit_frames = check_request(clips, int(horizon), frames)
        except (NextframeError, TypeError, ValueError) as exc:
            raise MlflowException.invalid_parameter_value(str(exc)) from None
        predicted = predict_future(self.predictor, unit_frames, int(horizon))
        if isinstance(model_input, (np.ndarray, dict)):  # a tensor-signature model's answer
            from nextframe.clips import from_unit

            return from_unit(predicted, frames)
        answers = zip(predicted, forms, strict=True)
        return [_answer(future, form, clips.dtype, frames) for future, form in answers]

    def _nowcast(self, model_input: list[Any], horizon: Any) -> list[Any]:
        """A radar model: rain rates in, the nowcast in mm/h out, NaN outside the domain."""
        from nextframe.rollout import predict_rain

        try:
            clips, forms = read_request(model_input)
            rain = check_rain_request(clips, int(horizon), self.predictor.settings.patch_size)
        except (NextframeError, TypeError, ValueError) as exc:
            raise MlflowException.invalid_parameter_value(str(exc)) from None
        nowcast = predict_rain(self.predictor, rain, int(horizon))
        return [_rain_answer(future, form) for future, form in zip(nowcast, forms, strict=True)]
