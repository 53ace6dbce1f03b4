"""`nextframe predict`: your own clip in, the next frames out (a `.npy`, a GIF and an `.mp4`).

The clip (a video, GIF, `.npy`/`.npz` or folder of numbered images) and the model path are
checked before Keras loads, so a bad file is refused in a fraction of a second; the clip is
brought to the model's frames as training brought its data (`nextframe.clips`); outputs are
written, atomically, only once the prediction exists.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from nextframe.clips import clips_of, from_unit, read_clip
from nextframe.errors import NextframeError
from nextframe.ops.layout import pipeline_path
from nextframe.ops.registry import frame_format_of, is_model_uri, load_model

GIF_SCALE = 4  # pixels per frame pixel in the GIF
GIF_FPS = 4
VIDEO_FPS = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "clip",
        type=Path,
        help="a video (.mp4 .avi .mov .mkv .webm), a GIF, a .npy/.npz of frames (T, H, W[, C]), "
        "or a folder of numbered PNG/JPEG frames",
    )
    parser.add_argument(
        "--model",
        help="a .keras file or an MLflow model URI such as models:/nextframe-convlstm@champion "
        "(default: the pipeline's model, paths.model in dvc.yaml)",
    )
    parser.add_argument(
        "--horizon", type=int, default=10, help="frames to predict, any number >= 1 (default: 10)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="the predicted frames, float32 (horizon, H, W, C) in [0, 1] (or in the units of "
        "the model's data.value_range); a GIF and an .mp4 of context then prediction go beside "
        "it (default: predictions/<clip name>.npy, .gif and .mp4)",
    )


def output_paths(clip: Path, out: Path | None) -> tuple[Path, Path, Path]:
    npy = out if out is not None else Path("predictions") / f"{clip.stem}.npy"
    return npy, npy.with_suffix(".gif"), npy.with_suffix(".mp4")


def _model_spec(given: str | None) -> str:
    spec = given or str(pipeline_path("model") or "")
    if not spec:
        raise NextframeError("no dvc.yaml here to take the model from: give --model")
    if not is_model_uri(spec) and not Path(spec).is_file():
        raise NextframeError(f"{spec}: model file not found (run `make repro` first?)")
    return spec


def run(args: argparse.Namespace) -> None:
    if args.horizon < 1:
        raise NextframeError(f"--horizon must be at least 1, got {args.horizon}")
    clips_of(args.clip)  # a readable kind of clip, before anything slow
    spec = _model_spec(args.model)
    npy_path, gif_path, video_path = output_paths(args.clip, args.out)
    if not is_model_uri(spec):  # read the clip before Keras loads: bad clips fail fast
        context, notes = read_clip(args.clip, frame_format_of(Path(spec)))

    from nextframe.data.export import write_clip
    from nextframe.io import save_npy
    from nextframe.render import context_then_prediction, save_gif
    from nextframe.rollout import predict_future

    model = load_model(spec)  # TensorFlow's start-up notices are dropped (nextframe/__init__)
    if is_model_uri(spec):
        context, notes = read_clip(args.clip, model.frames)
    for note in notes.describe(model.frames):
        print(f"predict: note: {note}")
    started = time.perf_counter()
    predicted = predict_future(model, context[None], args.horizon)[0]
    seconds = time.perf_counter() - started
    save_npy(npy_path, np.ascontiguousarray(from_unit(predicted, model.frames)))
    save_gif(gif_path, context_then_prediction(context, predicted, GIF_SCALE), GIF_FPS)
    written = [npy_path, gif_path]
    if model.frames.size % 2 == 0:  # MPEG-4 takes even sizes only
        both = np.concatenate([context, np.clip(predicted, 0.0, 1.0)])
        written.append(write_clip(video_path, np.rint(both * 255.0).astype(np.uint8), VIDEO_FPS))
    print(
        f"predict: {args.horizon} frames after {len(context)} given in {seconds:.2f} s: "
        f"{', '.join(map(str, written))} (float32 {predicted.shape})"
    )
