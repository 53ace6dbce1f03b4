"""What `make demo` shows of a video model: test sequences or an uploaded clip, context,
prediction and truth as animated panels."""

from __future__ import annotations

from typing import Any

import numpy as np

from nextframe.frames import FrameFormat, to_unit

GIF_SCALE = 3
GIF_FPS = 4


ABOUT = (
    "Pick a held-out test sequence (digits training never saw) or upload your own "
    "clip, set how many frames to predict, and press **Predict**."
)
UPLOAD_REFUSAL: str | None = None
MAX_MEMBERS = 0  # one forecast: no ensemble to show


def frame_shape(frames: FrameFormat) -> tuple[int, ...] | None:
    """The frame shape the demo's test windows must have (None: any)."""
    return frames.shape


def window(model, window_uint8: np.ndarray) -> np.ndarray:
    """A test window as the demo shows it."""
    return to_unit(window_uint8)


def panels(model, context, horizon, manifest) -> tuple[np.ndarray, Any, float, str]:
    """The prediction, how to draw each panel, the frame rate and a caption."""
    from nextframe.render import panel_frames
    from nextframe.rollout import predict_future

    predicted = predict_future(model, context[None], horizon)[0]
    caption = f"{len(context)} frames given, {horizon} predicted closed loop"
    return (
        predicted,
        lambda frames, kind: panel_frames(frames, kind, GIF_SCALE),
        GIF_FPS,
        caption,
    )
