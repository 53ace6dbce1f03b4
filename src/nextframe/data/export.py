"""Clips out: frames written as a video file (PyAV), a GIF, a folder of PNG frames or a `.npy`,
and Moving MNIST written out as a folder of such clips (`nextframe export`), grey or coloured.

What the folder source reads back (`nextframe.data.folder`), so a generated dataset can be
trained on as "your own videos", and the lossless formats (`.mkv` FFV1, `png` frames, `.npy`)
give back the very bytes written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from nextframe.data.moving_mnist import (
    DigitPools,
    Recipes,
    SequenceSpec,
    draw_recipes,
    generate_splits,
    render,
)
from nextframe.data.splits import SPLITS
from nextframe.errors import NextframeError
from nextframe.io import atomic_path, save_npy
from nextframe.render import save_gif

# suffix -> (codec, pixel format for grey, for RGB). FFV1 is lossless (planar RGB kept as RGB);
# the others are the usual lossy codecs of their containers.
VIDEO_CODECS = {
    ".mp4": ("mpeg4", "yuv420p", "yuv420p"),
    ".avi": ("mpeg4", "yuv420p", "yuv420p"),
    ".mov": ("mpeg4", "yuv420p", "yuv420p"),
    ".mkv": ("ffv1", "gray", "bgr0"),
    ".webm": ("libvpx-vp9", "yuv420p", "yuv420p"),
}
FORMATS = (*VIDEO_CODECS, ".gif", ".npy", "png")
VIDEO_BITRATE = 4_000_000  # bits/s: small frames, so lossy codecs keep most detail


def write_clip(path: Path, frames_uint8: np.ndarray, fps: float = 10.0) -> Path:
    """Write (T, H, W, C) uint8 frames (C of 1 or 3) as the format `path` names: a video by its
    suffix, `.gif`, `.npy`, or a folder of PNG frames for a path with no suffix. Atomic for
    files; the path written."""
    frames_uint8 = np.asarray(frames_uint8)
    if (
        frames_uint8.dtype != np.uint8
        or frames_uint8.ndim != 4
        or frames_uint8.shape[3] not in (1, 3)
    ):
        raise NextframeError(
            f"{path}: frames to write must be (T, H, W, 1 or 3) uint8, got "
            f"{frames_uint8.dtype} {frames_uint8.shape}"
        )
    suffix = path.suffix.lower()
    if suffix in VIDEO_CODECS:
        _write_video(path, frames_uint8, fps)
    elif suffix == ".gif":
        save_gif(path, frames_uint8, fps)
    elif suffix == ".npy":
        save_npy(path, frames_uint8)
    elif suffix == "":
        _write_pngs(path, frames_uint8)
    else:
        raise NextframeError(f"{path}: cannot write {suffix} clips (one of {', '.join(FORMATS)})")
    return path


def _images(frames_uint8: np.ndarray) -> list[Image.Image]:
    if frames_uint8.shape[3] == 1:
        return [Image.fromarray(frame[..., 0], "L") for frame in frames_uint8]
    return [Image.fromarray(frame, "RGB") for frame in frames_uint8]


def _write_video(path: Path, frames_uint8: np.ndarray, fps: float) -> None:
    import av

    codec, grey_format, rgb_format = VIDEO_CODECS[path.suffix.lower()]
    channels = frames_uint8.shape[3]
    height, width = frames_uint8.shape[1:3]
    if codec != "ffv1" and (height % 2 or width % 2):
        raise NextframeError(f"{path}: {codec} needs even frame sizes, got {width}x{height}")
    # bitexact: no random ids or muxer version in the file (Matroska and WebM would write a
    # random segment id), so the same frames give the same bytes: the same split by content,
    # one copy in DVC's cache.
    with (
        atomic_path(path) as tmp,
        av.open(str(tmp), "w", format=_container(path), container_options=BITEXACT) as container,
    ):
        stream = container.add_stream(codec, rate=_rate(fps))
        stream.width, stream.height = width, height
        stream.pix_fmt = grey_format if channels == 1 else rgb_format
        if codec != "ffv1":
            stream.bit_rate = VIDEO_BITRATE
        source_format = "gray" if channels == 1 else "rgb24"
        for frame in frames_uint8:
            pixels = frame[..., 0] if channels == 1 else frame
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), source_format)
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode())


BITEXACT = {"fflags": "+bitexact"}


def _container(path: Path) -> str:
    return {".mp4": "mp4", ".avi": "avi", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}[
        path.suffix.lower()
    ]


def _rate(fps: float):
    from fractions import Fraction

    return Fraction(fps).limit_denominator(1001)


def _write_pngs(folder: Path, frames_uint8: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for t, image in enumerate(_images(frames_uint8)):
        with atomic_path(folder / f"frame_{t:05d}.png") as tmp:
            image.save(tmp, format="PNG")


# Bright, distinct digit colours for the colour variant.
PALETTE = (
    np.array(
        [
            [255, 70, 70],
            [70, 230, 90],
            [80, 140, 255],
            [255, 220, 60],
            [60, 220, 240],
            [240, 90, 230],
        ]
    )
    / 255.0
)


def colour_sequences(
    rng: np.random.Generator, digit_pool_uint8: np.ndarray, n_sequences: int, spec: SequenceSpec
) -> np.ndarray:
    """Moving MNIST in colour: each digit drawn in a colour of `PALETTE` picked at random,
    digits combined by a per-channel maximum -> (n, T, S, S, 3) uint8."""
    recipes = draw_recipes(rng, digit_pool_uint8, n_sequences, spec)
    colours = PALETTE[rng.integers(0, len(PALETTE), (n_sequences, spec.digits_per_sequence))]
    size = spec.frame_size
    out = np.zeros((n_sequences, spec.n_frames, size, size, 3), np.uint8)
    for d in range(spec.digits_per_sequence):
        one_digit = Recipes(recipes.digits_uint8[:, d : d + 1], recipes.top_left[:, d : d + 1])
        grey = render(one_digit, size)[..., None].astype(np.float64)
        tinted = np.rint(grey * colours[:, d, None, None, None, :]).astype(np.uint8)
        np.maximum(out, tinted, out=out)
    return out


def export_moving_mnist(
    out_dir: Path,
    seed: int,
    counts: dict[str, int],
    pools: DigitPools,
    spec: SequenceSpec,
    suffix: str,
    colour: bool = False,
    fps: float = 10.0,
) -> dict[str, int]:
    """Write Moving MNIST's splits as clips under `out_dir/{train,val,test}/`, one file (or PNG
    folder) per sequence named `seq_00000<suffix>`. Grey sequences are exactly those
    `data.source: generated` makes from the same seed, counts and spec; test from held-out
    digits. The number of clips written per split."""
    if suffix not in FORMATS:
        raise NextframeError(f"export: format {suffix} is not one of {', '.join(FORMATS)}")
    if colour:
        splits = {
            split: colour_sequences(
                np.random.default_rng([seed, index]),
                pools.test if split == "test" else pools.train_val,
                counts[split],
                spec,
            )
            for index, split in enumerate(SPLITS)
        }
    else:
        grey = generate_splits(seed, counts, pools, spec, progress=False)
        splits = {split: grey[split][..., None] for split in grey}
    name_suffix = "" if suffix == "png" else suffix
    for split, sequences in splits.items():
        for index, sequence in enumerate(sequences):
            write_clip(out_dir / split / f"seq_{index:05d}{name_suffix}", sequence, fps)
    return {split: len(sequences) for split, sequences in splits.items()}
