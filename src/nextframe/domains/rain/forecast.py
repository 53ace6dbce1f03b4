"""A radar model's nowcast of whole composites: rain rates in mm/h of any domain size, padded to
the model's patch, predicted closed loop, and NaN again where the radar sees nothing. A model
of the Lagrangian formulation predicts in the frame of the moving rain and its leads are
advected to their times; with probability matching each lead takes the last frame's rain
distribution (`nextframe.domains.rain.formulation`). An ensemble's members grow around the
network's one forecast (`nextframe.domains.rain.perturbed`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nextframe.domains.rain.formulation import Formulation
from nextframe.domains.rain.lagrangian import (
    context_to_lagrangian,
    leads_from_lagrangian,
    match_distribution,
)
from nextframe.domains.rain.nowcast import motion_field
from nextframe.model import NextFramePredictor
from nextframe.rollout import predict_future

# (N, T, H, W) model values of the context, no NaN -> (N, horizon, H, W) in the same frame.
PredictValues = Callable[[np.ndarray, int], np.ndarray]
# One window's members (M, L, H, W), NaN-free, in the radar's frame, grown around the
# network's forecast: (its forecast (L, H, W) and its context (T, H, W, NaN-free) in the frame
# the network predicts in, the last context frame as observed (NaN outside the domain), the
# window's motion (2, H, W; None: the radar's frame), the window's index in the batch).
GrowMembers = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, int], np.ndarray]


def padded_shape(height: int, width: int, multiple: int) -> tuple[int, int]:
    """The frame size the model runs at: each side rounded up to a multiple of its patch."""
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple


def _in_frame(
    context_values: np.ndarray,
    context_mmh: np.ndarray,
    formulation: Formulation,
    motions: np.ndarray | None,
) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """The context as the network reads it (NaN-free, in the rain's frame for a Lagrangian
    model) and each window's motion (None: the radar's frame)."""
    if formulation.frame != "lagrangian":
        return np.nan_to_num(context_values, nan=0.0), None
    if motions is None:
        motions = [motion_field(context) for context in context_mmh]
    velocities = list(motions)
    values = np.stack(
        [context_to_lagrangian(c, v) for c, v in zip(context_values, velocities, strict=True)]
    )
    return np.nan_to_num(values, nan=0.0), velocities


def _to_radar_frame(
    predicted: np.ndarray,
    velocities: list[np.ndarray] | None,
    formulation: Formulation,
    context_values: np.ndarray,
) -> np.ndarray:
    """The network's leads (N, L, H, W) in the frame it predicts in -> the nowcast in model
    values in the radar's frame, NaN-free (each lead matched to the last frame's rain
    distribution where `formulation` says so)."""
    if velocities is not None:
        predicted = np.stack(
            [leads_from_lagrangian(p, v) for p, v in zip(predicted, velocities, strict=True)]
        )
        # Inflow from beyond the grid is dry, as in pysteps' nowcasts here (`nowcast.to_mmh`).
        predicted = np.nan_to_num(predicted, nan=0.0)
    if formulation.probmatching == "cdf":
        predicted = np.stack(
            [
                match_distribution(p, last)
                for p, last in zip(predicted, context_values[:, -1], strict=True)
            ]
        )
    return predicted


def nowcast_values(
    context_values: np.ndarray,
    context_mmh: np.ndarray,
    horizon: int,
    formulation: Formulation,
    predict: PredictValues,
    motions: np.ndarray | None = None,
) -> np.ndarray:
    """The nowcast in model values (N, horizon, H, W), NaN-free, from a context of model values
    (N, T, H, W; NaN no data) and the same frames in mm/h (for the motion), as `formulation`
    makes it around the network `predict`. `motions` (N, 2, H, W): each context's motion
    (`nowcast.motion_field`) where the caller has it already."""
    values, velocities = _in_frame(context_values, context_mmh, formulation, motions)
    predicted = np.asarray(predict(values, horizon), dtype=np.float32)
    return _to_radar_frame(predicted, velocities, formulation, context_values)


def nowcast_members(
    context_values: np.ndarray,
    context_mmh: np.ndarray,
    horizon: int,
    formulation: Formulation,
    predict: PredictValues,
    grow: GrowMembers,
    motions: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`nowcast_values`' forecast (N, horizon, H, W) and its ensemble (N, M, horizon, H, W):
    the network runs once a window, and `grow` makes the members around that forecast
    (`nextframe.domains.rain.perturbed`)."""
    values, velocities = _in_frame(context_values, context_mmh, formulation, motions)
    predicted = np.asarray(predict(values, horizon), dtype=np.float32)
    members = np.stack(
        [
            grow(
                predicted[i],
                values[i],
                context_values[i, -1],
                None if velocities is None else velocities[i],
                i,
            )
            for i in range(len(predicted))
        ]
    )
    return _to_radar_frame(predicted, velocities, formulation, context_values), members


def predict_rain(
    model: NextFramePredictor,
    context_mmh: np.ndarray,
    horizon: int,
    batch_size: int = 8,
    motions: np.ndarray | None = None,
    members: GrowMembers | None = None,
) -> np.ndarray:
    """A radar model's nowcast: rain rates (N, T, H, W) in mm/h, NaN outside the domain, of
    any domain size -> (N, horizon, H, W) mm/h, NaN where the last context frame is NaN; with
    `members` (how a window's members grow around the network's forecast), its ensemble
    (N, M, horizon, H, W).

    The model reads no-data pixels as dry; each frame is padded (dry) to a multiple of the
    model's patch and cut back after. A Lagrangian model takes each context's motion from
    `motions` (N, 2, H, W) where given, else finds it (`nowcast.motion_field`)."""
    forecast, ensemble = forecast_and_members(
        model, context_mmh, horizon, members, batch_size, motions
    )
    return forecast if ensemble is None else ensemble


def forecast_and_members(
    model: NextFramePredictor,
    context_mmh: np.ndarray,
    horizon: int,
    members: GrowMembers | None,
    batch_size: int = 8,
    motions: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """`predict_rain`'s nowcast and, with `members`, its ensemble from the same run of the
    network (evaluation scores both): ((N, horizon, H, W), (N, M, horizon, H, W) or None)."""
    scale = model.frames.rain
    if scale is None:
        raise ValueError("predict_rain needs a radar model (frames with a rain scale)")
    context_mmh = np.asarray(context_mmh, dtype=np.float32)
    if context_mmh.ndim == 5:
        context_mmh = context_mmh[..., 0]
    height, width = context_mmh.shape[2:]
    padded_h, padded_w = padded_shape(height, width, model.settings.patch_size)
    pad = ((0, 0), (0, 0), (0, padded_h - height), (0, padded_w - width))

    def network(values: np.ndarray, n_leads: int) -> np.ndarray:
        padded = np.pad(values, pad)[..., None]
        return predict_future(model, padded, n_leads, batch_size)[:, :, :height, :width, 0]

    formulation = model.frames.formulation or Formulation()
    context_values = scale.to_unit(context_mmh)
    ensemble = None
    if members is None:
        forecast = nowcast_values(
            context_values, context_mmh, horizon, formulation, network, motions
        )
    else:
        forecast, ensemble = nowcast_members(
            context_values, context_mmh, horizon, formulation, network, members, motions
        )
    outside = np.isnan(context_mmh[:, -1])  # (N, H, W)

    def in_mmh(values: np.ndarray) -> np.ndarray:
        rain = scale.to_mmh(np.clip(values, 0.0, 1.0))
        where = outside.reshape(len(outside), *(1,) * (rain.ndim - 3), height, width)
        rain[np.broadcast_to(where, rain.shape)] = np.nan
        return rain

    return in_mmh(forecast), None if ensemble is None else in_mmh(ensemble)
