"""`nextframe predict`: your own clip in, the next frames out (a `.npy`, a GIF and an `.mp4`).

The clip (a video, GIF, `.npy`/`.npz` or folder of numbered images) and the model path are
checked before Keras loads, so a bad file is refused in a fraction of a second; the clip is
brought to the model's frames as training brought its data (`nextframe.clips`): its last
`n_context` frames at the model's rate (every `frame_stride`-th, counting back from the last),
each change noted; outputs are written, atomically, only once the prediction exists.
"""

from __future__ import annotations

import argparse
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np

from nextframe.clips import read_clip_tail
from nextframe.errors import NextframeError
from nextframe.frames import FrameFormat, from_unit, to_uint8
from nextframe.ops.layout import pipeline_path
from nextframe.ops.registry import frame_format_of, is_model_uri, load_model

DEFAULT_HORIZON = 10
DEFAULT_CONTEXT = 4  # context frames of a model that recorded none, with no params.yaml here
GIF_SCALE = 4  # pixels per frame pixel in the GIF
GIF_FPS = 4
VIDEO_FPS = 10


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


def _params_here():
    """params.yaml of the pipeline here, or None."""
    from nextframe.params import load_params

    params_path = Path("params.yaml")
    return load_params(params_path) if params_path.is_file() else None


def context_length(given: int | None, frames: FrameFormat) -> int:
    """How many frames to start from: `--context`, else the model's own, else the pipeline's."""
    n_context = given or frames.n_context
    if n_context is None:
        params = _params_here()
        n_context = params.data.n_context if params is not None else DEFAULT_CONTEXT
    if n_context < 2:
        raise NextframeError(f"--context must be at least 2, got {n_context}")
    return n_context


def read_context(
    clip: Path, frames: FrameFormat, n_context: int, name: str | None = None
) -> tuple[np.ndarray, list[str]]:
    """The clip's last `n_context` frames as the model takes them, and a note for each change
    made to them; a corrupt file is one error naming it (as `name`, if given)."""
    try:
        context, notes, n_total = read_clip_tail(clip, frames, n_context, name)
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise NextframeError(f"{name or clip}: truncated or corrupt file ({reason})") from None
    described = notes.describe(frames)
    stride = frames.frame_stride
    if stride > 1:
        described.append(f"one frame in {stride} kept, as the model was trained (frame_stride)")
    span = (len(context) - 1) * stride + 1
    if n_total > span:
        described.append(f"the last {len(context)} of the clip's {n_total} frames given")
    return context, described


def run(args: argparse.Namespace) -> None:
    if args.horizon is not None and args.horizon < 1:
        raise NextframeError(f"--horizon must be at least 1, got {args.horizon}")
    spec = _model_spec(args.model)
    model = None
    if is_model_uri(spec):
        model = load_model(spec)
        frames = model.frames
    else:
        frames = frame_format_of(Path(spec))
    if frames.is_rain:
        return run_nowcast(args, spec, model)
    args.horizon = args.horizon or DEFAULT_HORIZON
    # the clip is read before Keras loads a model file: a bad clip fails fast
    context, notes = read_context(args.clip, frames, context_length(args.context, frames))
    npy_path, gif_path, video_path = output_paths(args.clip, args.out)

    from nextframe.data.export import write_clip
    from nextframe.io import save_npy
    from nextframe.render import context_then_prediction, save_gif
    from nextframe.rollout import predict_future

    # TensorFlow's start-up notices are dropped (nextframe/__init__)
    model = model or load_model(spec)
    for note in notes:
        print(f"predict: note: {note}")
    started = time.perf_counter()
    predicted = predict_future(model, context[None], args.horizon)[0]
    seconds = time.perf_counter() - started
    save_npy(npy_path, np.ascontiguousarray(from_unit(predicted, model.frames)))
    save_gif(gif_path, context_then_prediction(context, predicted, GIF_SCALE), GIF_FPS)
    written = [npy_path, gif_path]
    if model.frames.size % 2 == 0:  # MPEG-4 takes even sizes only
        both = to_uint8(np.concatenate([context, predicted]))
        written.append(write_clip(video_path, both, VIDEO_FPS))
    print(
        f"predict: {args.horizon} frames after {len(context)} given in {seconds:.2f} s: "
        f"{', '.join(map(str, written))} (float32 {predicted.shape})"
    )


def _radar_settings(args: argparse.Namespace, frames: FrameFormat) -> tuple[str, dict, int]:
    """The network, layout overrides and context length: the arguments', else those of the
    pipeline's params.yaml (when it names a radar source), else the defaults."""
    params = _params_here()
    radar = params.data.radar if params is not None else None
    network = args.network or (radar.network if radar is not None else None)
    if network is None:
        raise NextframeError("a radar model needs --network (a pysteps data source, e.g. mch)")
    overrides: dict = {}
    if radar is not None and network == radar.network:
        keys = ("root_path", "path_fmt", "fn_pattern", "fn_ext", "importer", "timestep")
        overrides = {key: getattr(radar, key) for key in (*keys, "importer_kwargs")}
    return network, overrides, context_length(args.context, frames)


def run_nowcast(args: argparse.Namespace, spec: str, model=None) -> None:
    """A radar model: the latest frames of an archive (or those up to --start) in, the next
    frames in mm/h out (`.npy`, NaN outside the domain), maps as a GIF and an MP4."""
    from datetime import datetime

    from nextframe.data.radar import latest_context

    end = None
    if args.start is not None:
        try:
            end = datetime.strptime(args.start, "%Y%m%d%H%M")
        except ValueError:
            raise NextframeError(f"--start must be YYYYmmddHHMM, got {args.start!r}") from None
    if not args.clip.is_dir():
        raise NextframeError(f"{args.clip}: not a folder of radar files or a radar archive")
    fmt = model.frames if model is not None else frame_format_of(Path(spec))
    network, overrides, n_context = _radar_settings(args, fmt)
    context, frames, layout = latest_context(args.clip, network, overrides, n_context, end)
    npy_path, gif_path, video_path = output_paths(
        Path(f"{network}_{frames[-1].time:%Y%m%d%H%M}"), args.out
    )

    from nextframe.data.export import write_clip
    from nextframe.io import save_npy
    from nextframe.radar_render import nowcast_sequence
    from nextframe.render import save_gif
    from nextframe.rollout import predict_rain

    model = model or load_model(spec)
    horizon = args.horizon or model.horizon
    started = time.perf_counter()
    nowcast = predict_rain(model, context[None], horizon)[0]
    seconds = time.perf_counter() - started
    save_npy(npy_path, nowcast)
    maps = nowcast_sequence(context, nowcast, layout.timestep_minutes, RADAR_MAP_SCALE)
    save_gif(gif_path, maps, RADAR_FPS)
    even = maps[:, : maps.shape[1] // 2 * 2, : maps.shape[2] // 2 * 2]  # MPEG-4: even sizes
    written = [npy_path, gif_path, write_clip(video_path, even, RADAR_FPS)]
    step = layout.timestep_minutes
    leads = f"+{step:g} to +{horizon * step:g} min"
    print(
        f"predict: {network} nowcast {leads} every {step:g} min after "
        f"{frames[-1].time:%Y-%m-%d %H:%M} ({n_context} frames given) in {seconds:.2f} s: "
        f"{', '.join(map(str, written))} (float32 mm/h {nowcast.shape}, NaN outside the domain)"
    )


RADAR_MAP_SCALE = 0.5  # a 640x710 composite drawn 320x355
RADAR_FPS = 2
