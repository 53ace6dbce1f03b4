"""What every domain's `nextframe predict` shares: where it writes, how many frames it starts
from, and a clip read as the model takes it (`nextframe.clips`), each change noted."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from nextframe.clips import read_clip_tail
from nextframe.errors import NextframeError
from nextframe.frames import FrameFormat

DEFAULT_HORIZON = 10
DEFAULT_CONTEXT = 4  # context frames of a model that recorded none, with no params.yaml here


def output_paths(clip: Path, out: Path | None) -> tuple[Path, Path, Path]:
    npy = out if out is not None else Path("predictions") / f"{clip.stem}.npy"
    return npy, npy.with_suffix(".gif"), npy.with_suffix(".mp4")


def params_here():
    """params.yaml of the pipeline here, or None."""
    from nextframe.params import load_params

    params_path = Path("params.yaml")
    return load_params(params_path) if params_path.is_file() else None


def context_length(given: int | None, frames: FrameFormat) -> int:
    """How many frames to start from: `--context`, else the model's own, else the pipeline's."""
    n_context = given or frames.n_context
    if n_context is None:
        params = params_here()
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
