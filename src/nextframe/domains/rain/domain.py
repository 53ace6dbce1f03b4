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

    def predict(self, model, context, horizon):
        from nextframe.domains.rain.forecast import predict_rain

        return predict_rain(model, context, int(horizon))

    def answer(self, future, form, dtype, frames):
        """In mm/h: a base64 .npy (NaN outside the domain) or lists (null there)."""
        return rain_answer(future, form)


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
    """A radar nowcast in mm/h: a base64 .npy (NaN outside the domain) or lists (null there)."""
    if form == "npy":
        return encode_npy(future_mmh)
    return [
        [[None if np.isnan(v) else float(v) for v in row] for row in frame] for frame in future_mmh
    ]


DOMAIN = RainDomain()
