"""The rain domain's core: rain rates in mm/h with no-data (NaN outside the radar's domain), kept as
uint8 rain codes (`scale`), read by the model on its dBR scale, predicted on whole composites
of any size (`forecast`), judged as nowcasters judge beside pysteps' nowcasts (`evaluation`,
`nowcast`) and drawn on pysteps' colour scale (`render`)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from nextframe.domains import Domain, check_horizon
from nextframe.errors import NextframeError
from nextframe.frames import MIN_CONTEXT_FRAMES
from nextframe.io import encode_npy


class RainDomain(Domain):
    name = "rain"
    # Radar models are judged by their rain rates' squared error, among radar models only: they
    # take this alias, never `champion` (`make serve MODEL=models:/nextframe-convlstm@radar`).
    registry_alias = "radar"

    def open_windows(self, path, data):
        from nextframe.data.windows import open_radar_windows

        return open_radar_windows(path, data.n_frames)

    def check_data(self, frames, shape, model_path):
        # any domain size: only rain rates, one value per pixel
        if shape[-1] != 1:
            raise NextframeError(
                f"{model_path}: a radar model takes one rain rate per pixel, the data's frames "
                f"have {shape[-1]} channels"
            )

    def batch_values(self, batch, frame_size):
        from nextframe.domains.rain.scale import rain_codes_to_frames

        return rain_codes_to_frames(batch)

    def loss(self, kind, batch, predictions, frames):
        """The mean over pixels with data, in model values."""
        from nextframe.domains.rain.loss import fractions_loss, masked_mean, pixel_losses
        from nextframe.domains.rain.scale import rain_codes_to_frames, rain_valid

        targets, valid = rain_codes_to_frames(batch)[:, 1:], rain_valid(batch)[:, 1:]
        loss = masked_mean(pixel_losses(kind, targets, predictions, frames.rain), valid)
        if kind == "balanced+fss":
            loss = loss + fractions_loss(targets, predictions, valid, frames.rain)
        return loss

    # -- serving ------------------------------------------------------------------------------
    def request_example(self, frames):
        """Rain rates in mm/h, NaN outside the radar's domain."""
        clip = np.zeros((MIN_CONTEXT_FRAMES, frames.size, frames.size), np.float32)
        clip[:, 0, 0] = np.nan
        return clip

    def format_key(self, frames):
        """The rain scale's digest: rain models of other scales do not compare."""
        scale = json.dumps(frames.rain.to_config(), sort_keys=True).encode()
        return f"-rain{hashlib.sha256(scale).hexdigest()[:8]}"

    def read_request(self, clips, horizon, model):
        return check_rain_request(clips, horizon, model.settings.patch_size)

    def request_params(self):
        """An ensemble (`members` 2 to 48; 0: one forecast), its `seed`, and the grid its
        noise and motion perturbations are drawn for: `pixel_km`, `timestep_minutes`, and
        `network` (pysteps' fitted perturbations of its motion where pysteps has them)."""
        return dict(SERVED_ENSEMBLE)

    def read_members(self, params, context, horizon, max_bytes):
        return served_members(params, context.shape, int(horizon), max_bytes)

    def predict(self, model, context, horizon, members=None):
        from nextframe.domains.rain.forecast import predict_rain

        return predict_rain(model, context, int(horizon), members=members)

    def answer(self, future, form, dtype, frames):
        """In mm/h: a base64 .npy (NaN outside the domain) or lists (null there)."""
        return rain_answer(future, form)


# A served request's ensemble params, at the values that ask for none (one forecast); the grid's
# defaults are MeteoSwiss's (pysteps' example archive).
SERVED_ENSEMBLE = {
    "members": 0,
    "seed": 0,
    "pixel_km": 1.0,
    "timestep_minutes": 5.0,
    "network": "",
}


def served_members(
    params: dict[str, Any], shape: tuple[int, ...], horizon: int, max_bytes: int
) -> Any:
    """A request's `members` and the rest of `SERVED_ENSEMBLE` as `predict_rain` grows
    members (each clip seeded with `seed`, as `nextframe predict --seed` seeds its one), or
    None for one forecast; refused with one line naming the param, also where the members of
    every clip (float32 mm/h) would hold more than `max_bytes`."""
    from nextframe.params import MAX_ENSEMBLE_MEMBERS

    members = params.get("members") or 0
    if members == 0:
        return None
    if not isinstance(members, int) or not 2 <= members <= MAX_ENSEMBLE_MEMBERS:
        raise NextframeError(
            f"members must be 0 (one forecast) or 2 to {MAX_ENSEMBLE_MEMBERS}, got {members}"
        )
    for name in ("pixel_km", "timestep_minutes"):
        value = params.get(name, SERVED_ENSEMBLE[name])
        if not (isinstance(value, (int, float)) and 0 < value < 1e4):
            raise NextframeError(f"{name} must be a positive number, got {value!r}")
    seed = params.get("seed", 0)
    if not isinstance(seed, int) or seed < 0:
        raise NextframeError(f"seed must be a whole number >= 0, got {seed!r}")

    n_clips, height, width = shape[0], shape[-2], shape[-1]
    n_bytes = 4 * n_clips * members * horizon * height * width
    if n_bytes > max_bytes:
        raise NextframeError(
            f"members: {members} members of {n_clips} clip(s), {horizon} frames of "
            f"{width}x{height} hold {n_bytes / 2**20:.3g} MB, more than this server's limit of "
            f"{max_bytes / 2**20:g} MB (NEXTFRAME_SERVE_MAX_MB)"
        )

    from nextframe.domains.rain.ensemble import EnsembleSpec
    from nextframe.domains.rain.perturbed import grown_around

    spec = EnsembleSpec(
        members,
        float(params.get("pixel_km", SERVED_ENSEMBLE["pixel_km"])),
        float(params.get("timestep_minutes", SERVED_ENSEMBLE["timestep_minutes"])),
        str(params.get("network") or ""),
    )
    return grown_around(spec, [seed] * n_clips)


def check_rain_request(context: np.ndarray, horizon: int, patch_size: int) -> np.ndarray:
    """A radar model's request: rain rates in mm/h (N, T, H, W) or (N, T, H, W, 1) of any
    domain size, NaN outside the domain; as float32 (N, T, H, W), or one reason to refuse it."""
    check_horizon(horizon)
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


def rain_answer(future_mmh: np.ndarray, form: str) -> Any:
    """A radar nowcast (or an ensemble's members) in mm/h: a base64 .npy (NaN outside the
    domain) or lists (null there)."""
    if form == "npy":
        return encode_npy(future_mmh)
    values = future_mmh.astype(object)
    values[np.isnan(future_mmh)] = None
    return values.tolist()


DOMAIN = RainDomain()
