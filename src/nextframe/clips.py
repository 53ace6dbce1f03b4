"""A user's own clip in: a `.npy` or GIF read, checked and brought to the model's frames.

Only numpy and Pillow here, so a bad file is refused before Keras and the backend load.
Every problem is a `NextframeError` naming the file and what was expected.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

from nextframe.errors import NextframeError

MIN_CONTEXT_FRAMES = 2
GIF_MAGIC = (b"GIF87a", b"GIF89a")
NPY_MAGIC = b"\x93NUMPY"
# Beyond this a file is no clip of small grey frames; refused before it is read whole.
MAX_CLIP_BYTES = 512 * 1024 * 1024


def read_clip(path: str | os.PathLike[str], name: str | None = None) -> np.ndarray:
    """A `.npy` (T, H, W) or (T, H, W, 1), uint8 or float in [0, 1], or a GIF: its frames as
    float32 (T, H, W) in [0, 1]. Errors name the file as `name` (default: its path)."""
    path = Path(path)
    name = name or str(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            magic = file.read(6)
    except FileNotFoundError:
        raise NextframeError(f"{name}: file not found") from None
    except OSError as exc:
        raise NextframeError(f"{name}: cannot read ({exc.strerror or exc})") from None
    if size > MAX_CLIP_BYTES:
        raise NextframeError(
            f"{name}: {size / 2**20:.0f} MiB is too large for a clip (at most "
            f"{MAX_CLIP_BYTES // 2**20} MiB)"
        )
    if magic in GIF_MAGIC:
        frames = _read_gif(path, name)
    elif magic == NPY_MAGIC:
        frames = _read_npy(path, name)
    else:
        raise NextframeError(f"{name}: not a .npy array or a GIF (unrecognised file header)")
    return check_clip(frames, name)


def _read_npy(path: Path, name: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise NextframeError(
                f"{name}: holds Python objects (pickled); only plain numeric arrays are read"
            ) from None
        raise NextframeError(f"{name}: truncated or corrupt .npy ({exc})") from None
    except (OSError, EOFError) as exc:
        raise NextframeError(f"{name}: truncated or corrupt .npy ({exc})") from None


def _read_gif(path: Path, name: str) -> np.ndarray:
    """Every frame of a GIF as grey uint8 (T, H, W)."""
    try:
        with Image.open(path) as image:
            return np.stack([np.asarray(f.convert("L")) for f in ImageSequence.Iterator(image)])
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as exc:
        raise NextframeError(f"{name}: truncated or corrupt GIF ({exc})") from None


def check_clip(frames: np.ndarray, source: str) -> np.ndarray:
    """(T, H, W) or (T, H, W, 1), uint8 or float in [0, 1], T >= 2 -> float32 (T, H, W)."""
    frames = np.asarray(frames)
    if frames.ndim == 4 and frames.shape[-1] == 1:
        frames = frames[..., 0]
    if frames.ndim != 3:
        raise NextframeError(
            f"{source}: expected frames (T, H, W) or (T, H, W, 1), got shape {frames.shape}"
        )
    if frames.shape[1] < 1 or frames.shape[2] < 1:
        raise NextframeError(f"{source}: frames of {frames.shape[1]}x{frames.shape[2]} pixels")
    if frames.shape[0] < MIN_CONTEXT_FRAMES:
        raise NextframeError(
            f"{source}: needs at least {MIN_CONTEXT_FRAMES} context frames, got {frames.shape[0]}"
        )
    if frames.dtype == np.uint8:
        return frames.astype(np.float32) / np.float32(255.0)
    if frames.dtype.kind != "f":
        raise NextframeError(
            f"{source}: dtype {frames.dtype} is neither uint8 (0-255) nor float in [0, 1]"
        )
    check_unit_values(frames, source, hint=" (uint8 frames are read as 0-255)")
    return frames.astype(np.float32)


def check_unit_values(frames: np.ndarray, source: str, hint: str = "") -> None:
    """Float frames must be finite and within [0, 1], the range the model was trained on."""
    n_bad = int(np.count_nonzero(~np.isfinite(frames)))
    if n_bad:
        raise NextframeError(f"{source}: {n_bad} values are NaN or infinite")
    low, high = float(frames.min()), float(frames.max())
    if low < 0.0 or high > 1.0:
        raise NextframeError(
            f"{source}: float values must lie in [0, 1], found {low:.4g} to {high:.4g}{hint}"
        )


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """float32 (T, H, W) in [0, 1] -> (T, height, width), bilinear, still in [0, 1]."""
    resized = [
        np.asarray(Image.fromarray(frame).resize((width, height), Image.BILINEAR))
        for frame in np.asarray(frames, dtype=np.float32)
    ]
    return np.clip(np.stack(resized), 0.0, 1.0).astype(np.float32)
