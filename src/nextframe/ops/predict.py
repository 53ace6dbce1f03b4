"""`nextframe predict`: your own clip in, the next frames out (a `.npy` and a GIF).

The clip is read and checked before Keras loads, so a bad file is refused in a fraction of a
second; outputs are written, atomically, only once the prediction exists.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from nextframe.clips import read_clip, resize_frames
from nextframe.errors import NextframeError
from nextframe.ops.registry import load_model

DEFAULT_MODEL = "models/model.keras"
GIF_SCALE = 4  # pixels per frame pixel in the GIF
GIF_FPS = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "clip",
        type=Path,
        help="a .npy (T, H, W) or (T, H, W, 1), uint8 or float in [0, 1], or a GIF",
    )
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="a .keras file or an MLflow model URI such as models:/nextframe-convlstm@champion "
        f"(default: {DEFAULT_MODEL})",
    )
    parser.add_argument(
        "--horizon", type=int, default=10, help="frames to predict, any number >= 1 (default: 10)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="the predicted frames, float32 (horizon, H, W) in [0, 1]; the GIF of context then "
        "prediction goes beside it (default: predictions/<clip name>.npy and .gif)",
    )


def output_paths(clip: Path, out: Path | None) -> tuple[Path, Path]:
    npy = out if out is not None else Path("predictions") / f"{clip.stem}.npy"
    return npy, npy.with_suffix(".gif")


def run(args: argparse.Namespace) -> None:
    if args.horizon < 1:
        raise NextframeError(f"--horizon must be at least 1, got {args.horizon}")
    context = read_clip(args.clip)
    npy_path, gif_path = output_paths(args.clip, args.out)

    from nextframe.io import save_npy
    from nextframe.model import frame_shape
    from nextframe.render import context_then_prediction, save_gif
    from nextframe.rollout import predict_future

    model = load_model(args.model)
    height, width = frame_shape(model)
    if context.shape[1:] != (height, width):
        print(
            f"predict: note: frames of {context.shape[1]}x{context.shape[2]} resized to the "
            f"model's {height}x{width}"
        )
        context = resize_frames(context, height, width)
    predicted = predict_future(model, context[None, ..., None], args.horizon)[0, ..., 0]
    animation = context_then_prediction(context, predicted, GIF_SCALE)
    save_npy(npy_path, np.ascontiguousarray(predicted))
    save_gif(gif_path, animation, GIF_FPS)
    print(
        f"predict: {args.horizon} frames after {len(context)} given: {npy_path} "
        f"(float32 {predicted.shape}), {gif_path}"
    )
