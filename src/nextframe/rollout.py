"""Closed-loop prediction: the model's own frames fed back, any horizon, batched.

`predict_future` encodes the context once and then steps the carried ConvLSTM states, so a
horizon of H costs H steps. `rerun_rollout` is the keras-io example's way (re-run the whole growing
sequence for every new frame, O(H^2)); it is kept to check equality and for the benchmark.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from nextframe.frames import to_float_frames
from nextframe.model import NextFramePredictor


def _batches(context: np.ndarray, batch_size: int):
    for start in range(0, len(context), batch_size):
        yield context[start : start + batch_size]


def _as_frames(context: np.ndarray) -> np.ndarray:
    """uint8 or float (N, T, H, W, C) -> float32 (N, T, H, W, C) in [0, 1]."""
    if context.dtype == np.uint8:
        return to_float_frames(context)
    return np.asarray(context, dtype=np.float32)


def predict_future(
    model: NextFramePredictor, context: np.ndarray, horizon: int, batch_size: int = 32
) -> np.ndarray:
    """(N, T, H, W, C) context -> (N, horizon, H, W, C) float32 predictions, O(T + horizon)."""
    out = [
        ops.convert_to_numpy(model.rollout(_as_frames(batch), horizon))
        for batch in _batches(context, batch_size)
    ]
    return np.concatenate(out).astype(np.float32)


def rerun_rollout(
    model: NextFramePredictor, context: np.ndarray, horizon: int, batch_size: int = 32
) -> np.ndarray:
    """The keras-io example's loop: for each new frame, run the whole sequence so far again."""
    out = []
    for batch in _batches(context, batch_size):
        sequence = _as_frames(batch)
        for _ in range(horizon):
            predictions, _ = model.encode(sequence)
            next_frame = ops.convert_to_numpy(predictions[:, -1:])
            sequence = np.concatenate([sequence, next_frame], axis=1)
        out.append(sequence[:, -horizon:])
    return np.concatenate(out).astype(np.float32)
