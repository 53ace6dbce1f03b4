"""The video domain's core: frames in [0, 1] of a fixed size (Moving MNIST, your own clips):
how a batch becomes the model's values, which data a model reads, and how a served request is
read and answered."""

from __future__ import annotations

import numpy as np

from nextframe.domains import Domain, check_horizon
from nextframe.errors import NextframeError
from nextframe.frames import MIN_CONTEXT_FRAMES, FrameFormat, from_unit, to_uint8, to_unit
from nextframe.io import encode_npy


class VideoDomain(Domain):
    name = "video"
    registry_alias = "champion"

    def open_windows(self, path, data):
        from nextframe.data.windows import open_windows

        return open_windows(path, data.n_frames, data.frame_size, data.channels)

    def check_data(self, frames, shape, model_path):
        if tuple(shape[2:]) != frames.shape:
            raise NextframeError(
                f"{model_path}: the model takes frames of {frames.shape}, the data's are "
                f"{tuple(shape[2:])} (train it again on this data)"
            )

    def batch_values(self, batch, frame_size):
        from nextframe.frames import uint8_to_unit

        if isinstance(batch, dict):  # recipes of fresh Moving MNIST sequences
            from nextframe.data.moving_mnist import render_recipes

            return render_recipes(batch["digits"], batch["top_left"], frame_size)
        return uint8_to_unit(batch)

    def validation_score(self, model, params, windows):
        """The closed-loop MSE per frame on the val split (the evaluate stage's figure, on
        val), whatever `train.loss` is."""
        from nextframe.domains.video.evaluation import evaluate_windows

        data = params.data

        def val_mse(logs: dict) -> float:
            report, _ = evaluate_windows(
                model,
                windows,
                data.n_context,
                data.horizon,
                params.train.batch_size,
                with_spectra=False,
                with_baselines=False,
            )
            return report["model"]["mse"]

        return val_mse

    # -- serving ------------------------------------------------------------------------------
    def request_example(self, frames):
        n_frames = (MIN_CONTEXT_FRAMES - 1) * frames.frame_stride + 1
        return np.zeros((n_frames, *frames.shape), np.uint8)

    def read_request(self, clips, horizon, model):
        return check_request(clips, horizon, model.frames)

    def predict(self, model, context, horizon, members=None):
        from nextframe.rollout import predict_future

        return predict_future(model, context, int(horizon))

    def answer(self, future, form, dtype, frames):
        """uint8 frames get uint8 frames back, others float32 (in the model's units)."""
        future = to_uint8(future) if dtype == np.uint8 else from_unit(future, frames)
        return encode_npy(future) if form == "npy" else future.tolist()


def strided(context: np.ndarray, stride: int) -> np.ndarray:
    """Every `stride`-th frame of each clip (N, T, ...), counting back from the last."""
    return context[:, (context.shape[1] - 1) % stride :: stride]


def in_model_units(context: np.ndarray, frames: FrameFormat) -> np.ndarray:
    """uint8 frames (0-255) or numbers in the model's units -> float32 in [0, 1]; numbers
    outside the model's range, or not finite, are refused with the range."""
    if context.dtype == np.uint8:
        return to_unit(context)
    if context.dtype.kind != "f":
        raise NextframeError(
            f"context: dtype {context.dtype} is neither uint8 (0-255) nor float (in the "
            "model's units)"
        )
    n_bad = int(np.count_nonzero(~np.isfinite(context)))
    if n_bad:
        raise NextframeError(f"context: {n_bad} values are NaN or infinite")
    low, high = frames.value_range or (0.0, 1.0)
    found_low, found_high = float(context.min()), float(context.max())
    if found_low < low or found_high > high:
        units = "the model's data.value_range" if frames.value_range else "the model's units"
        hint = ""
        if frames.value_range is None and found_high <= 255:
            hint = "; frames of 0-255 go as a base64 uint8 .npy"
        raise NextframeError(
            f"context: values must lie in [{low:g}, {high:g}] ({units}), found "
            f"{found_low:.4g} to {found_high:.4g}{hint}"
        )
    if frames.value_range is None:
        return context.astype(np.float32)
    return ((context - low) / (high - low)).astype(np.float32)


def check_request(context: np.ndarray, horizon: int, frames: FrameFormat) -> np.ndarray:
    """The context as the model's float32 frames in [0, 1], every `frames.frame_stride`-th
    frame kept, or one reason to refuse it: too few frames, frames of another shape, values
    outside [0, 1] (or the model's value range) or not finite, a horizon out of range."""
    check_horizon(horizon)
    expected = f"(N, T, {', '.join(map(str, frames.shape))})"
    stride = frames.frame_stride
    at_least = (MIN_CONTEXT_FRAMES - 1) * stride + 1
    if context.ndim != 5 or context.shape[0] < 1 or context.shape[1] < at_least:
        rate = f" at their own rate (the model keeps one in {stride})" if stride > 1 else ""
        raise NextframeError(
            f"context must be {expected} with N >= 1 clips of T >= {at_least} "
            f"frames{rate}, got shape {context.shape}"
        )
    if context.shape[2:] != frames.shape:
        raise NextframeError(f"context must be {expected}, got shape {context.shape}")
    return in_model_units(strided(context, stride), frames)


DOMAIN = VideoDomain()
