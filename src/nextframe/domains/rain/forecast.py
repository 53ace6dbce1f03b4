"""A radar model's nowcast of whole composites: rain rates in mm/h of any domain size, padded to
the model's patch, predicted closed loop, and NaN again where the radar sees nothing."""

from __future__ import annotations

import numpy as np

from nextframe.model import NextFramePredictor
from nextframe.rollout import predict_future


def padded_shape(height: int, width: int, multiple: int) -> tuple[int, int]:
    """The frame size the model runs at: each side rounded up to a multiple of its patch."""
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple


def predict_rain(
    model: NextFramePredictor, context_mmh: np.ndarray, horizon: int, batch_size: int = 8
) -> np.ndarray:
    """A radar model's nowcast: rain rates (N, T, H, W) in mm/h, NaN outside the domain, of
    any domain size -> (N, horizon, H, W) mm/h, NaN where the last context frame is NaN.

    The model reads no-data pixels as dry; each frame is padded (dry) to a multiple of the
    model's patch and cut back after."""
    scale = model.frames.rain
    if scale is None:
        raise ValueError("predict_rain needs a radar model (frames with a rain scale)")
    context_mmh = np.asarray(context_mmh, dtype=np.float32)
    if context_mmh.ndim == 5:
        context_mmh = context_mmh[..., 0]
    height, width = context_mmh.shape[2:]
    padded_h, padded_w = padded_shape(height, width, model.settings.patch_size)
    unit = np.nan_to_num(scale.to_unit(context_mmh), nan=0.0)
    pad = ((0, 0), (0, 0), (0, padded_h - height), (0, padded_w - width))
    unit = np.pad(unit, pad)[..., None]
    predicted = predict_future(model, unit, horizon, batch_size)[:, :, :height, :width, 0]
    rain = scale.to_mmh(np.clip(predicted, 0.0, 1.0))
    outside = np.isnan(context_mmh[:, -1])  # (N, H, W)
    rain[np.broadcast_to(outside[:, None], rain.shape)] = np.nan
    return rain
