"""A radar model's training loss: per-pixel errors in model values, averaged over the pixels
with data only (no-data pixels, outside the radar's domain, weigh nothing)."""

from __future__ import annotations

import numpy as np
from keras import ops

from nextframe.domains.rain.scale import RainScale

# HKO-7's balanced loss (Shi et al. 2017): a pixel's squared plus absolute error weighs more
# the heavier its observed rain, so rare heavy rain is not traded for the many dry pixels.
BALANCED_WEIGHTS_MMH = ((2.0, 2.0), (5.0, 5.0), (10.0, 10.0), (30.0, 30.0))  # (from, weight)


def pixel_losses(kind: str, targets, predictions, scale: RainScale | None = None):
    """Each pixel's loss (B, T, H, W, C): what the masked radar loss averages over pixels
    with data."""
    error = predictions - targets
    if kind == "bce":
        return ops.binary_crossentropy(targets, ops.clip(predictions, 1e-7, 1.0 - 1e-7))
    if kind == "mse":
        return ops.square(error)
    if kind == "l1+l2":
        return ops.abs(error) + ops.square(error)
    weights = ops.ones_like(targets)
    for from_mmh, weight in BALANCED_WEIGHTS_MMH:
        level = float(scale.to_unit(np.float64(from_mmh)))
        weights = ops.where(targets >= level, weight, weights)
    return weights * (ops.abs(error) + ops.square(error))


def masked_mean(values, valid):
    """The mean of `values` over the pixels where `valid` is 1: no-data pixels weigh nothing."""
    return ops.sum(values * valid) / ops.maximum(ops.sum(valid), 1.0)
