"""A radar model's training loss: per-pixel errors in model values, averaged over the pixels
with data only (no-data pixels, outside the radar's domain, weigh nothing)."""

from __future__ import annotations

import numpy as np
from keras import ops

from nextframe.domains.rain.scale import RainScale

# HKO-7's balanced loss (Shi et al. 2017): a pixel's squared plus absolute error weighs more
# the heavier its observed rain, so rare heavy rain is not traded for the many dry pixels.
BALANCED_WEIGHTS_MMH = ((2.0, 2.0), (5.0, 5.0), (10.0, 10.0), (30.0, 30.0))  # (from, weight)
# HKO-7 weighs a pixel by its observed rain only, so under uncertainty heavy rain predicted
# where light rain fell costs little and the same rain missed costs much: the loss is least for
# a forecast heavier and wider than the truth, more so the longer the lead. `balanced_max`
# weighs by the heavier of the observed and the predicted rain: rain added costs what rain
# missed costs.
BALANCED_LOSSES = ("balanced", "balanced+fss", "balanced_max")

# `balanced+fss` adds a fractions term (Roberts & Lean's FSS made a loss, as Lagerquist and
# Ebert-Uphoff 2022 train with it): at each threshold, the share of each block of pixels
# raining above it, soft (a logistic of width FSS_WIDTH_DB around the threshold), predicted
# against observed. It pays for rain area lost or added within a block, not for where in the
# block the rain sits, so shrinking uncertain rain costs what it should.
FSS_THRESHOLDS_MMH = (1.0, 5.0)
FSS_BLOCKS_PX = (8, 32)
FSS_WIDTH_DB = 1.0


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
    if kind not in BALANCED_LOSSES:
        raise ValueError(f"unknown radar loss {kind!r}")
    weighed_by = ops.maximum(targets, predictions) if kind == "balanced_max" else targets
    weights = ops.ones_like(targets)
    for from_mmh, weight in BALANCED_WEIGHTS_MMH:
        level = float(scale.to_unit(np.float64(from_mmh)))
        weights = ops.where(weighed_by >= level, weight, weights)
    return weights * (ops.abs(error) + ops.square(error))


def _block_mean(values, block: int):
    """(N, H, W, C) -> the mean of each whole `block` x `block` block."""
    return ops.average_pool(values, block, strides=block, padding="valid")


def fractions_loss(targets, predictions, valid, scale: RainScale):
    """The mean squared difference of predicted and observed rain fractions (B, T, H, W, 1
    values; `valid` 1 where there is data) above each of `FSS_THRESHOLDS_MMH`, over blocks of
    each of `FSS_BLOCKS_PX` pixels (whole blocks; a block's fraction is of its pixels with
    data, and a block without data weighs nothing)."""
    shape = ops.shape(targets)
    flat = (-1, shape[2], shape[3], shape[4])
    targets, predictions, valid = (ops.reshape(x, flat) for x in (targets, predictions, valid))
    width = FSS_WIDTH_DB / scale.span_db  # in model values
    counted = {block: _block_mean(valid, block) for block in FSS_BLOCKS_PX}  # share with data
    terms = []
    for mmh in FSS_THRESHOLDS_MMH:
        level = float(scale.to_unit(np.float64(mmh)))
        excess = ops.sigmoid((predictions - level) / width) - ops.sigmoid((targets - level) / width)
        for block, share in counted.items():
            # Block means are linear: the mean of the difference is the difference of fractions.
            difference = _block_mean(excess * valid, block) / ops.maximum(share, 1e-6)
            terms.append(masked_mean(ops.square(difference), ops.cast(share > 0, share.dtype)))
    return ops.mean(ops.stack(terms))


def masked_mean(values, valid):
    """The mean of `values` over the pixels where `valid` is 1: no-data pixels weigh nothing."""
    return ops.sum(values * valid) / ops.maximum(ops.sum(valid), 1.0)
