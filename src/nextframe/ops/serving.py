"""The model MLflow logs, registers and serves: a pyfunc around the closed-loop rollout, so
the horizon is a request parameter (`params: {"horizon": N}`), which Keras' own flavour
(a plain `model.predict`) cannot take.

It is logged as code (`served_model.py`, MLflow's models from code), not pickled, and it
loads the saved predictor in Keras safe mode. Every request is checked; a bad one is
answered 400 with the reason, and the server goes on serving.
"""

from __future__ import annotations

import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PythonModel

from nextframe.clips import MIN_CONTEXT_FRAMES, FrameFormat, ReadNotes, to_unit, to_unit_range
from nextframe.errors import NextframeError
from nextframe.ops.registry import PREDICTOR_ARTIFACT

# A longer rollout is refused: it would hold the (single) worker for minutes.
MAX_SERVED_HORIZON = 100


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


class RolloutModel(PythonModel):
    """Context (N, T, H, W, C) in [0, 1] (float32, or uint8 0-255; in the units of the model's
    value range if it has one) -> the next `horizon` frames (N, horizon, H, W, C), predicted
    closed loop."""

    def load_context(self, context) -> None:
        from nextframe.model import load_predictor

        self.predictor = load_predictor(context.artifacts[PREDICTOR_ARTIFACT])

    def predict(self, context, model_input, params=None) -> np.ndarray:
        from nextframe.clips import from_unit
        from nextframe.rollout import predict_future

        # The signature names its one input: MLflow hands it over by name.
        frames = np.asarray(
            model_input["context"] if isinstance(model_input, dict) else model_input
        )
        horizon = (params or {}).get("horizon")
        try:
            unit_frames = check_request(frames, int(horizon), self.predictor.frames)
        except (NextframeError, TypeError, ValueError) as exc:
            raise MlflowException.invalid_parameter_value(str(exc)) from None
        predicted = predict_future(self.predictor, unit_frames, int(horizon))
        return from_unit(predicted, self.predictor.frames)
