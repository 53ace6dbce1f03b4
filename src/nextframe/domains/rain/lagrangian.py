"""The frame of the moving rain (L-CNN's Lagrangian frame, Ritvanen et al. 2023): motion comes
from pysteps' optical flow, and the network learns only what advection misses.

A window's motion is the Lucas-Kanade field of its context, the one pysteps' extrapolation
nowcast uses (`nowcast.motion_field`). Into the frame: each context frame is advected forward
to the last context time, each target frame moved back to it along the reversed motion. Out of
it: the network's field for lead k is advected k steps forward. Every advection is pysteps'
semi-Lagrangian scheme, one step at a time from the previous step's displacement, so lead k's
field is exactly `extrapolate(field, velocity, k)[-1]`: a network that repeats its last
context frame in this frame is pysteps' extrapolation nowcast.

Fields are the model's values (dBR scaled to [0, 1], `scale`): linear in dB, so advecting them
is advecting dB, as pysteps' examples do. NaN (no data) stays NaN where it is carried, and a
pixel whose trajectory starts beyond the grid is NaN too.
"""

from __future__ import annotations

import numpy as np

from nextframe.domains.rain.nowcast import motion_field
from nextframe.errors import NextframeError
from nextframe.motion import pysteps


def advect_steps(fields: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """(K, H, W) -> (K, H, W): field k (0-based) advected k + 1 time steps along `velocity`
    (2, H, W) in pixels per step, with pysteps' semi-Lagrangian scheme. NaN is carried; values
    from beyond the grid are NaN."""
    extrapolate = pysteps().extrapolation.get_method("semilagrangian")
    out = np.full(fields.shape, np.nan, dtype=np.float32)
    displacement = None
    for k, field in enumerate(np.asarray(fields, dtype=np.float64)):
        if not np.isfinite(field).any():  # nothing to carry; the trajectory still goes on
            _, displacement = extrapolate(
                None, velocity, 1, displacement_prev=displacement, return_displacement=True
            )
            continue
        moved, displacement = extrapolate(
            field,
            velocity,
            1,
            allow_nonfinite_values=True,
            displacement_prev=displacement,
            return_displacement=True,
        )
        out[k] = moved[0]
    return out


def displacements(velocity: np.ndarray, n_steps: int) -> np.ndarray:
    """(n_steps, 2, H, W): where pysteps' semi-Lagrangian scheme fetches each pixel's value
    from after 1, 2, ... steps along `velocity` (2, H, W), as offsets (x, y) in pixels: the
    trajectories `advect_steps` carries fields along, found once for many fields."""
    extrapolate = pysteps().extrapolation.get_method("semilagrangian")
    out = np.empty((n_steps, *velocity.shape))
    displacement = None
    for k in range(n_steps):
        _, displacement = extrapolate(
            None, velocity, 1, displacement_prev=displacement, return_displacement=True
        )
        out[k] = displacement
    return out


def warped(field: np.ndarray, displacement: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """(H, W) NaN-free -> the field carried along `displacement` (2, H, W; `displacements`) and
    a uniform `shift` (x, y) in pixels more, interpolated as pysteps' scheme does (bilinear,
    NaN from beyond the grid)."""
    from scipy.ndimage import map_coordinates

    rows, cols = np.indices(field.shape, dtype=np.float64)
    coords = [rows + displacement[1] - shift[1], cols + displacement[0] - shift[0]]
    return map_coordinates(field, coords, mode="constant", cval=np.nan, order=1, prefilter=False)


def context_to_lagrangian(context: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """(T, H, W) context -> each frame advected to the last context time (the last as it is)."""
    out = np.array(context, dtype=np.float32)
    if len(context) > 1:
        out[:-1] = advect_steps(context[-2::-1], velocity)[::-1]
    return out


def targets_to_lagrangian(targets: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """(L, H, W) frames after the context -> lead k moved back k steps, to the last context
    time: what the network learns to predict."""
    return advect_steps(targets, -velocity)


def leads_from_lagrangian(leads: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """(L, H, W) fields in the frame of the rain -> lead k advected k steps forward: the
    nowcast."""
    return advect_steps(leads, velocity)


def match_distribution(leads: np.ndarray, last: np.ndarray) -> np.ndarray:
    """(L, H, W) nowcast values, NaN-free -> each lead with the rain distribution of `last`
    (H, W; NaN outside the domain) over the pixels `last` covers, ranks kept (pysteps'
    empirical CDF matching); the rest as they were."""
    probmatching = pysteps().postprocessing.probmatching
    valid = np.isfinite(last)
    if not valid.any():
        return leads
    out = np.array(leads, dtype=np.float32)
    reference = last[valid].astype(np.float64)
    for k, lead in enumerate(out):
        values = lead[valid].astype(np.float64)
        if values.min() == values.max():  # nothing to rank
            continue
        out[k][valid] = probmatching.nonparam_match_empirical_cdf(values, reference)
    return out


def window_to_lagrangian(window_unit: np.ndarray, window_mmh: np.ndarray, n_context: int):
    """A training window (T, H, W) of model values (NaN no data) in its rain's frame: the context
    advected to its last time, the targets moved back to it, along the context's motion; and
    whether a motion was found (False: an all-dry context, or one pysteps finds no motion in,
    left still: counted by the caller, not fatal)."""
    try:
        velocity = motion_field(window_mmh[:n_context])
    except (NextframeError, ValueError):  # e.g. a last context frame without data
        velocity = np.zeros((2, *window_mmh.shape[1:]))
    out = np.empty(window_unit.shape, dtype=np.float32)
    out[:n_context] = context_to_lagrangian(window_unit[:n_context], velocity)
    out[n_context:] = targets_to_lagrangian(window_unit[n_context:], velocity)
    return out, bool(np.any(velocity))
