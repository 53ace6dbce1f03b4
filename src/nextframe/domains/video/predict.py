"""`nextframe predict` for a video model: a clip's last frames in, the next `--horizon` frames
out: a `.npy` in the model's units, a GIF and an MP4 of context then prediction."""

from __future__ import annotations

import numpy as np

from nextframe.errors import NextframeError
from nextframe.frames import FrameFormat, from_unit, to_uint8

GIF_SCALE = 4  # pixels per frame pixel in the GIF
GIF_FPS = 4
VIDEO_FPS = 10


def predict_files(args, frames: FrameFormat, load_model) -> None:
    """A clip's last frames in, the next `--horizon` frames out: a `.npy` in the model's
    units, a GIF and an MP4 of context then prediction."""
    import time

    from nextframe.predicting import DEFAULT_HORIZON, context_length, output_paths, read_context

    if getattr(args, "members", None) is not None:
        raise NextframeError(
            "--members: a video model gives one forecast; members come from radar models "
            "(data.source: radar)"
        )
    horizon = args.horizon or DEFAULT_HORIZON
    # the clip is read before Keras loads a model file: a bad clip fails fast
    context, notes = read_context(args.clip, frames, context_length(args.context, frames))
    npy_path, gif_path, video_path = output_paths(args.clip, args.out)

    from nextframe.data.export import write_clip
    from nextframe.io import save_npy
    from nextframe.render import context_then_prediction, save_gif
    from nextframe.rollout import predict_future

    # TensorFlow's start-up notices are dropped (nextframe/__init__)
    model = load_model()
    for note in notes:
        print(f"predict: note: {note}")
    started = time.perf_counter()
    predicted = predict_future(model, context[None], horizon)[0]
    seconds = time.perf_counter() - started
    save_npy(npy_path, np.ascontiguousarray(from_unit(predicted, model.frames)))
    save_gif(gif_path, context_then_prediction(context, predicted, GIF_SCALE), GIF_FPS)
    written = [npy_path, gif_path]
    if model.frames.size % 2 == 0:  # MPEG-4 takes even sizes only
        both = to_uint8(np.concatenate([context, predicted]))
        written.append(write_clip(video_path, both, VIDEO_FPS))
    print(
        f"predict: {horizon} frames after {len(context)} given in {seconds:.2f} s: "
        f"{', '.join(map(str, written))} (float32 {predicted.shape})"
    )
