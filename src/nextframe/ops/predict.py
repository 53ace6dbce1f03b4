"""`nextframe predict`: your own clip in, the next frames out (a `.npy`, a GIF and an `.mp4`).

The clip (a video, GIF, `.npy`/`.npz` or folder of numbered images) and the model path are
checked before Keras loads, so a bad file is refused in a fraction of a second; the clip is
brought to the model's frames as training brought its data (`nextframe.clips`): its last
`n_context` frames at the model's rate (every `frame_stride`-th, counting back from the last),
each change noted; outputs are written, atomically, only once the prediction exists.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nextframe.domains import get_part
from nextframe.errors import NextframeError
from nextframe.ops.layout import pipeline_path
from nextframe.ops.registry import frame_format_of, is_model_uri, load_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "clip",
        type=Path,
        help="a video (.mp4 .avi .mov .mkv .webm), a GIF, a .npy/.npz of frames (T, H, W[, C]), "
        "or a folder of numbered PNG/JPEG frames; for a radar model, a radar archive (pysteps' "
        "layout) or a folder of radar files",
    )
    parser.add_argument(
        "--model",
        help="a .keras file or an MLflow model URI such as models:/nextframe-convlstm@champion "
        "(default: the pipeline's model, paths.model in dvc.yaml)",
    )
    parser.add_argument(
        "--horizon",
        type=int,
        help="frames to predict, any number >= 1 (default: 10; a radar model's own horizon)",
    )
    parser.add_argument(
        "--context",
        type=int,
        help="observed frames to start from, the clip's last (default: the model's own "
        "data.n_context, else params.yaml's, else 4)",
    )
    radar = parser.add_argument_group("radar models")
    radar.add_argument(
        "--start",
        help="the time of the last observed frame, YYYYmmddHHMM (default: the archive's last)",
    )
    radar.add_argument(
        "--network",
        help="the pysteps data source of the files (default: params.yaml's data.radar.network)",
    )
    radar.add_argument(
        "--members",
        type=int,
        help="an ensemble of this many members (2 to 48) grown around the model's forecast: "
        "the .npy holds them all (members, horizon, H, W), a CF NetCDF (.nc) beside it the "
        "members and the exceedance probabilities at params.yaml's evaluate.thresholds, a GIF "
        "of the probabilities of >= 1 and >= 5 mm/h",
    )
    radar.add_argument(
        "--seed", type=int, default=0, help="the members' seed: the same seed, the same members"
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="the predicted frames, float32 (horizon, H, W, C) in [0, 1] (or in the units of "
        "the model's data.value_range); a GIF and an .mp4 of context then prediction go beside "
        "it (default: predictions/<clip name>.npy, .gif and .mp4)",
    )


def _model_spec(given: str | None) -> str:
    spec = given or str(pipeline_path("model") or "")
    if not spec:
        raise NextframeError("no dvc.yaml here to take the model from: give --model")
    if not is_model_uri(spec) and not Path(spec).is_file():
        raise NextframeError(f"{spec}: model file not found (run `make repro` first?)")
    return spec


def run(args: argparse.Namespace) -> None:
    """The model's frames (read from the file or the registry without building the model) pick
    its domain, which reads the input, predicts and writes the files."""
    if args.horizon is not None and args.horizon < 1:
        raise NextframeError(f"--horizon must be at least 1, got {args.horizon}")
    spec = _model_spec(args.model)
    model = load_model(spec) if is_model_uri(spec) else None
    frames = model.frames if model is not None else frame_format_of(Path(spec))
    predictor = get_part(frames.domain, "predict")
    predictor.predict_files(args, frames, lambda: model or load_model(spec))
