"""Clips in: video files, GIFs, `.npy`/`.npz` arrays and folders of numbered images, read a
frame at a time and brought to the model's frames (`nextframe.frames.FrameFormat`).

Used by the folder source (`nextframe.data.folder`), `nextframe predict`, serving and the demo,
so a clip reads the same wherever it goes in. Video is decoded with PyAV (FFmpeg's libraries
in its wheel: no system ffmpeg). Every problem is a `NextframeError` naming the clip.

How a frame becomes the model's, in order (documented in the README, "Your own videos"):
0. a video's rotation (a phone's display matrix) is applied, so its frames stand upright.
1. channels: grey (1) or RGB (3); colour becomes grey by ITU-R 601 luma (as Pillow's "L"),
   grey becomes RGB by repeating it. An alpha channel is dropped.
2. float frames are mapped from `value_range` [low, high] to [0, 1]; without a value range
   they must lie in [0, 1] already; NaN or infinite values are refused. 16-bit frames (uint16
   arrays, 16-bit PNG/TIFF) are mapped by `value_range` too, else from 0-65535. Other integer
   frames must be uint8 (0-255).
3. shape: a non-square frame is centre-cropped to a square (`aspect: crop`), padded with
   black to one (`pad`), or squeezed (`stretch`); then resized to `size` by area averaging.
Every change is noted (`ReadNotes`), for fetch's summary and predict's output.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nextframe.errors import NextframeError
from nextframe.frames import MIN_CONTEXT_FRAMES, FrameFormat, to_unit

if TYPE_CHECKING:  # Pillow is imported where frames are resized or images read
    from PIL import Image

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
ARRAY_SUFFIXES = (".npy", ".npz")
CLIP_SUFFIXES = (*VIDEO_SUFFIXES, ".gif", *ARRAY_SUFFIXES)
GIF_MAGIC = (b"GIF87a", b"GIF89a")
NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
# ITU-R 601-2 luma, Pillow's "L" conversion.
LUMA = np.array([0.299, 0.587, 0.114])
UINT16_MAX = 65535
# Pillow's modes of 16-bit grey images, read at their depth (not through "L", which clips).
DEEP_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
# How far a grey video's chroma may stray from neutral (128) through a lossy codec.
NEUTRAL_CHROMA_TOLERANCE = 2


@dataclass
class ReadNotes:
    """What reading changed, for the summary line and predict's notes: clips whose channels
    were converted (grey to RGB or back), resized (and, not square, cropped, padded or
    stretched), had their alpha dropped, 16-bit values scaled from 0-65535, or were turned
    upright; float values outside `value_range` that were clipped; `.npz` members passed
    over because they hold no clip."""

    converted_clips: set[str] = field(default_factory=set)
    clipped_values: int = 0
    resized_from: tuple[int, int] | None = None  # (H, W) of a frame that was resized
    resized_clips: set[str] = field(default_factory=set)
    unsquare_clips: set[str] = field(default_factory=set)  # of the resized, not square
    alpha_clips: set[str] = field(default_factory=set)
    deep_clips: set[str] = field(default_factory=set)
    rotated_clips: dict[str, int] = field(default_factory=dict)  # degrees turned clockwise
    passed_over: list[str] = field(default_factory=list)  # "file.npz:key (shape)"

    def resized(self, name: str, height: int, width: int) -> None:
        self.resized_from = (height, width)
        self.resized_clips.add(name)
        if height != width:
            self.unsquare_clips.add(name)

    def describe(self, fmt: FrameFormat) -> list[str]:
        """One note per change, for a user who reads one clip."""
        notes = []
        for degrees in sorted(set(self.rotated_clips.values())):
            notes.append(f"frames turned upright ({_turn(degrees)}, as the video asks)")
        if self.resized_from is not None:
            height, width = self.resized_from
            how = {"crop": "centre-cropped and ", "pad": "padded and ", "stretch": ""}
            square = "" if height == width else how[fmt.aspect]
            notes.append(
                f"frames of {width}x{height} {square}resized to the model's {fmt.size}x{fmt.size}"
            )
        if self.converted_clips:
            notes.append("grey frames repeated to RGB" if fmt.channels == 3 else "RGB made grey")
        if self.alpha_clips:
            notes.append("alpha channel dropped")
        if self.deep_clips:
            notes.append(f"16-bit values read as 0-{UINT16_MAX} (data.value_range sets another)")
        if self.clipped_values:
            notes.append(f"{self.clipped_values} values outside {list(fmt.value_range)} clipped")
        if self.passed_over:
            notes.append(
                f".npz members that are no clip passed over: {', '.join(self.passed_over)}"
            )
        return notes


def _turn(degrees_clockwise: int) -> str:
    if degrees_clockwise == 180:
        return "rotated 180°"
    if degrees_clockwise == 270:
        return "rotated 90° anticlockwise"
    return f"rotated {degrees_clockwise}° clockwise"


# -- channels, values and shape of one frame ------------------------------------------------


def _as_hwc(frame: np.ndarray, name: str) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) -> (H, W, C); the alpha is kept here."""
    frame = np.asarray(frame)
    if frame.ndim == 2:
        return frame[..., None]
    if frame.ndim == 3 and frame.shape[-1] in (1, 3, 4):
        return frame
    raise NextframeError(
        f"{name}: frames must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {frame.shape}"
    )


def _is_uint16(frame: np.ndarray) -> bool:
    return frame.dtype.kind == "u" and frame.dtype.itemsize == 2


def to_channels(frame: np.ndarray, channels: int, name: str, notes: ReadNotes) -> np.ndarray:
    """(H, W, c) -> (H, W, channels): luma for colour to grey, repeated grey for grey to RGB."""
    if frame.shape[-1] == channels:
        return frame
    notes.converted_clips.add(name)
    if channels == 3:
        return np.repeat(frame, 3, axis=-1)
    grey = frame.astype(np.float64) @ LUMA
    if frame.dtype == np.uint8:
        return np.clip(np.rint(grey), 0, 255).astype(np.uint8)[..., None]
    return grey.astype(frame.dtype)[..., None]


def to_unit_range(frame: np.ndarray, fmt: FrameFormat, name: str, notes: ReadNotes) -> np.ndarray:
    """Float and 16-bit frames -> float32 in [0, 1] by `fmt.value_range` (16-bit ones without
    it from 0-65535); uint8 frames are left as they are."""
    if frame.dtype == np.uint8:
        return frame
    if _is_uint16(frame) and fmt.value_range is None:
        return (frame.astype(np.float32) / np.float32(UINT16_MAX)).astype(np.float32)
    if frame.dtype.kind != "f" and not _is_uint16(frame):
        raise NextframeError(
            f"{name}: dtype {frame.dtype} is neither uint8 (0-255), uint16 (0-65535) nor float "
            "(in [0, 1], or in the units of data.value_range)"
        )
    n_bad = int(np.count_nonzero(~np.isfinite(frame)))
    if n_bad:
        raise NextframeError(f"{name}: {n_bad} values are NaN or infinite")
    if fmt.value_range is None:
        low, high = float(frame.min()), float(frame.max())
        if low < 0.0 or high > 1.0:
            raise NextframeError(
                f"{name}: float values must lie in [0, 1], found {low:.4g} to {high:.4g} "
                "(set data.value_range to the data's [low, high]; uint8 frames are read as 0-255)"
            )
        return frame.astype(np.float32)
    low, high = fmt.value_range
    unit = (frame.astype(np.float64) - low) / (high - low)
    outside = int(np.count_nonzero((unit < 0.0) | (unit > 1.0)))
    if outside:
        notes.clipped_values += outside
        unit = np.clip(unit, 0.0, 1.0)
    return unit.astype(np.float32)


def square_box(height: int, width: int, aspect: str) -> tuple[int, int, int, int]:
    """(top, left, side_h, side_w) of the part of a frame that becomes the square: its centre
    square for `crop`, the whole frame otherwise."""
    if aspect != "crop" or height == width:
        return 0, 0, height, width
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


def _pad_square(frame: np.ndarray) -> np.ndarray:
    height, width = frame.shape[:2]
    side = max(height, width)
    out = np.zeros((side, side, frame.shape[2]), dtype=frame.dtype)
    top, left = (side - height) // 2, (side - width) // 2
    out[top : top + height, left : left + width] = frame
    return out


def resize_square(
    frame: np.ndarray, fmt: FrameFormat, notes: ReadNotes, name: str = ""
) -> np.ndarray:
    """(H, W, C) uint8 or float32 -> (size, size, C) of the same dtype, by `fmt.aspect` and
    area averaging (Pillow's box filter); noted as clip `name`'s."""
    height, width = frame.shape[:2]
    if (height, width) == (fmt.size, fmt.size):
        return frame
    notes.resized(name, height, width)
    if fmt.aspect == "pad":
        frame = _pad_square(frame)
    else:
        top, left, box_h, box_w = square_box(height, width, fmt.aspect)
        frame = frame[top : top + box_h, left : left + box_w]
    from PIL import Image  # here, not at the top: training and prediction never resize

    size = (fmt.size, fmt.size)
    if frame.dtype == np.uint8:
        mode = "L" if frame.shape[2] == 1 else "RGB"
        image = Image.fromarray(frame[..., 0] if mode == "L" else frame, mode)
        resized = np.asarray(image.resize(size, Image.BOX))
        return resized[..., None] if mode == "L" else resized
    planes = [
        np.asarray(Image.fromarray(frame[..., c], "F").resize(size, Image.BOX))
        for c in range(frame.shape[2])
    ]
    return np.clip(np.stack(planes, axis=-1), 0.0, 1.0).astype(np.float32)


def conform(
    frame: np.ndarray, fmt: FrameFormat, clip_name: str, notes: ReadNotes, index: int = 0
) -> np.ndarray:
    """Frame `index` of a clip, of any accepted kind -> (size, size, channels): uint8 stays
    uint8, float becomes float32 in [0, 1]. Errors name the clip and the frame."""
    where = f"{clip_name} frame {index + 1}"
    frame = _as_hwc(frame, where)
    if frame.shape[-1] == 4:
        notes.alpha_clips.add(clip_name)
        frame = frame[..., :3]
    if _is_uint16(frame) and fmt.value_range is None:
        notes.deep_clips.add(clip_name)
    frame = to_unit_range(frame, fmt, where, notes)
    frame = to_channels(frame, fmt.channels, clip_name, notes)
    return resize_square(frame, fmt, notes, clip_name)


# -- clips of each kind -----------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    """One clip: `name` (a path, `file.npy[3]` for the fourth clip of a big array, or
    `file.npz:key`), where it is read from, and which one of the file's clips it is."""

    name: str
    path: Path
    kind: str  # video | gif | array | images
    key: str | None = None  # the .npz member
    index: int | None = None  # the clip's row in a big (N, T, H, W[, C]) array

    def frames(self, fmt: FrameFormat, notes: ReadNotes | None = None) -> Iterator[np.ndarray]:
        """The clip's frames, conformed to `fmt`, one at a time."""
        notes = notes if notes is not None else ReadNotes()
        if self.kind == "video":
            yield from _video_frames(self, fmt, notes)
        elif self.kind == "gif":
            yield from _gif_frames(self, fmt, notes)
        elif self.kind == "images":
            yield from _image_frames(self, fmt, notes)
        else:
            yield from _array_frames(self, fmt, notes)

    def digest(self) -> str:
        """sha256 of the clip's content: its file's bytes, its images' bytes in order, or
        (for one clip of a big array) its values."""
        digest = hashlib.sha256()
        if self.kind == "images":
            for image in numbered_images(self.path):
                _hash_file(image, digest)
        elif self.key is None and self.index is None:
            _hash_file(self.path, digest)
        else:
            array = _load_array(self)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


def _hash_file(path: Path, digest) -> None:
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)


def _check_sizes(shape: tuple[int, ...], first: tuple[int, ...] | None, name: str, t: int):
    if first is not None and shape[:2] != first[:2]:
        raise NextframeError(
            f"{name}: frame {t + 1} is {shape[1]}x{shape[0]}, frame 1 was {first[1]}x{first[0]}: "
            "the frames of one clip must have one size"
        )
    return shape if first is None else first


def _video_frames(clip: Clip, fmt: FrameFormat, notes: ReadNotes) -> Iterator[np.ndarray]:
    """Decoded with PyAV; channels and size converted by FFmpeg's scaler (area averaging),
    frames turned upright by the video's display matrix (a phone's rotation)."""
    import av
    from av.video.reformatter import VideoReformatter

    pixel_format = "gray" if fmt.channels == 1 else "rgb24"
    try:
        container = av.open(str(clip.path))
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise NextframeError(f"{clip.name}: not a readable video ({_first_line(exc)})") from None
    with container:
        if not container.streams.video:
            raise NextframeError(f"{clip.name}: holds no video stream (audio only?)")
        stream = container.streams.video[0]
        # Frame threads decode ahead while this thread scales; the scaler keeps to one thread
        # (more would only contend with them) and is made once a clip, not once a frame.
        stream.thread_type = "FRAME"
        scaler = VideoReformatter()
        first = None
        colour_seen = False
        try:
            for t, frame in enumerate(container.decode(stream)):
                first = _check_sizes((frame.height, frame.width), first, clip.name, t)
                quarter_turns = round(frame.rotation / 90) % 4  # anticlockwise
                if quarter_turns:
                    notes.rotated_clips[clip.name] = (4 - quarter_turns) * 90
                if not colour_seen:
                    colour_seen = _note_video_channels(frame, fmt, clip.name, notes)
                yield _reformat(scaler, frame, fmt, pixel_format, notes, clip.name, quarter_turns)
        except av.FFmpegError as exc:
            raise NextframeError(f"{clip.name}: corrupt video ({_first_line(exc)})") from None


def _note_video_channels(frame, fmt: FrameFormat, name: str, notes: ReadNotes) -> bool:
    """Note what FFmpeg's scaler will change in `frame`'s channels: its alpha, grey repeated
    to RGB, colour made grey (a YUV frame whose chroma is neutral holds no colour to lose).
    True once the clip is known to hold colour: later frames need no look."""
    components = frame.format.components
    if any(component.is_alpha for component in components):
        notes.alpha_clips.add(name)
    is_grey = sum(not c.is_alpha for c in components) == 1 and not frame.format.has_palette
    if fmt.channels == 3:
        if is_grey:
            notes.converted_clips.add(name)
        return True
    if is_grey:
        return True
    if not _chroma_is_neutral(frame):
        notes.converted_clips.add(name)
        return True
    return False


def _chroma_is_neutral(frame) -> bool:
    """Whether an 8-bit planar YUV frame's chroma planes are all about 128 (grey content, as
    a grey clip written as MP4 has); False for any other format."""
    fmt = frame.format
    if not fmt.name.startswith("yuv") or not fmt.is_planar or fmt.components[1].bits != 8:
        return False
    for plane in frame.planes[1:3]:
        rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:, : plane.width]
        if np.abs(rows.astype(np.int16) - 128).max() > NEUTRAL_CHROMA_TOLERANCE:
            return False
    return True


def _reformat(
    scaler,
    frame,
    fmt: FrameFormat,
    pixel_format: str,
    notes: ReadNotes,
    name: str,
    quarter_turns: int = 0,
) -> np.ndarray:
    """One decoded frame -> (size, size, channels) uint8: turned `quarter_turns` times
    anticlockwise (upright), scaled so the square part becomes `size` (area averaging), then
    that part cut out (crop) or padded (pad)."""
    height, width = frame.height, frame.width
    if quarter_turns % 2:  # the upright frame's sides
        height, width = width, height
    if (height, width) == (fmt.size, fmt.size):
        pixels = scaler.reformat(frame, format=pixel_format, threads=1).to_ndarray()
        pixels = pixels[..., None] if pixels.ndim == 2 else pixels
        return np.ascontiguousarray(np.rot90(pixels, quarter_turns))
    notes.resized(name, height, width)
    if fmt.aspect == "stretch" or height == width:
        scaled_h = scaled_w = fmt.size
    elif fmt.aspect == "crop":
        scale = fmt.size / min(height, width)
        scaled_h, scaled_w = (
            max(fmt.size, round(height * scale)),
            max(fmt.size, round(width * scale)),
        )
    else:  # pad
        scale = fmt.size / max(height, width)
        scaled_h, scaled_w = max(1, round(height * scale)), max(1, round(width * scale))
    coded_h, coded_w = (scaled_w, scaled_h) if quarter_turns % 2 else (scaled_h, scaled_w)
    pixels = scaler.reformat(
        frame,
        width=coded_w,
        height=coded_h,
        format=pixel_format,
        interpolation="AREA",
        threads=1,
    ).to_ndarray()
    pixels = pixels[..., None] if pixels.ndim == 2 else pixels
    pixels = np.rot90(pixels, quarter_turns)
    if fmt.aspect == "pad":
        return resize_square(_pad_square(pixels), fmt, notes, name)
    top, left = (scaled_h - fmt.size) // 2, (scaled_w - fmt.size) // 2
    return np.ascontiguousarray(pixels[top : top + fmt.size, left : left + fmt.size])


def _pil_frames(images: Iterator[Image.Image], clip: Clip, fmt, notes) -> Iterator[np.ndarray]:
    """Pillow's frames: 8-bit ones converted by Pillow (its "L" luma), 16-bit and float ones
    read at their depth and brought to the model's frames as arrays are (`conform`)."""
    mode = "L" if fmt.channels == 1 else "RGB"
    first = None
    for t, image in enumerate(images):
        if image.mode in (*DEEP_MODES, "I", "F"):
            pixels = _deep_pixels(image, clip.name, t)
            first = _check_sizes(pixels.shape, first, clip.name, t)
            yield conform(pixels, fmt, clip.name, notes, t)
            continue
        if "A" in image.mode:
            notes.alpha_clips.add(clip.name)
        if image.mode not in ("L", "RGB"):
            native = "RGB" if image.mode in ("RGBA", "P", "CMYK", "LA", "PA") else "L"
            image = image.convert(native)
        if image.mode != mode:
            notes.converted_clips.add(clip.name)
        pixels = np.asarray(image.convert(mode))
        first = _check_sizes(pixels.shape, first, clip.name, t)
        yield resize_square(
            pixels[..., None] if pixels.ndim == 2 else pixels, fmt, notes, clip.name
        )


def _deep_pixels(image: Image.Image, name: str, t: int) -> np.ndarray:
    """A 16-bit (or 32-bit integer, or float) grey image's values: uint16 or float32 (H, W)."""
    if image.mode == "F":
        return np.asarray(image, dtype=np.float32)
    pixels = np.asarray(image)
    if image.mode == "I" and pixels.size and (pixels.min() < 0 or pixels.max() > UINT16_MAX):
        raise NextframeError(
            f"{name} frame {t + 1}: 32-bit integer values from {pixels.min()} to "
            f"{pixels.max()}; read are 8- and 16-bit images (0-{UINT16_MAX}) and float ones"
        )
    return pixels.astype(np.uint16)


def _gif_frames(clip: Clip, fmt: FrameFormat, notes: ReadNotes) -> Iterator[np.ndarray]:
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        with Image.open(clip.path) as image:
            yield from _pil_frames(ImageSequence.Iterator(image), clip, fmt, notes)
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as exc:
        raise NextframeError(f"{clip.name}: truncated or corrupt GIF ({exc})") from None


def numbered_images(folder: Path) -> list[Path]:
    """The PNG/JPEG/TIFF files of a folder in frame order, hidden ones passed over: by the
    number in their names (natural order: frame2 before frame10)."""
    images = [
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")  # macOS's ._x.png
    ]
    return sorted(images, key=lambda p: _natural_key(p.name))


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _image_frames(clip: Clip, fmt: FrameFormat, notes: ReadNotes) -> Iterator[np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    def opened() -> Iterator[Image.Image]:
        for path in numbered_images(clip.path):
            try:
                with Image.open(path) as image:
                    image.load()
                    yield image
            except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as exc:
                raise NextframeError(f"{path}: not a readable image ({exc})") from None

    yield from _pil_frames(opened(), clip, fmt, notes)


def _load_array(clip: Clip) -> np.ndarray:
    """The clip's array (T, H, W[, C]): a `.npy` memory-mapped (only the frames read are
    read), an `.npz` member decompressed once for all its clips and its digest."""
    try:
        if clip.key is not None:
            stat = clip.path.stat()
            array = _npz_member(str(clip.path), clip.key, stat.st_size, stat.st_mtime_ns)
        else:
            array = np.load(clip.path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        if any(word in str(exc) for word in ("allow_pickle", "Object arrays", "Python objects")):
            raise NextframeError(
                f"{clip.name}: holds Python objects (pickled); only plain numeric arrays are read"
            ) from None
        raise NextframeError(f"{clip.name}: truncated or corrupt array ({exc})") from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise NextframeError(f"{clip.name}: truncated or corrupt array ({exc})") from None
    return array if clip.index is None else array[clip.index]


# One member held: a stack's clips are read one after another, each from the member
# decompressed once (not once a clip, and again for its digest); the file's size and time are
# in the key, so a file changed since is read again.
@functools.lru_cache(maxsize=1)
def _npz_member(path: str, key: str, size: int, mtime_ns: int) -> np.ndarray:
    with np.load(path, allow_pickle=False) as archive:
        array = archive[key]
    array.flags.writeable = False
    return array


def _array_frames(clip: Clip, fmt: FrameFormat, notes: ReadNotes) -> Iterator[np.ndarray]:
    array = _load_array(clip)
    for t, frame in enumerate(array):
        yield conform(np.asarray(frame), fmt, clip.name, notes, t)


def array_clip_count(shape: tuple[int, ...], name: str) -> int | None:
    """How an array's shape reads: None for one clip (T, H, W) or (T, H, W, C) with C of 1, 3
    or 4 (RGBA), else the number N of clips in (N, T, H, W) or (N, T, H, W, C)."""
    rank = len(shape)
    if 0 in shape and rank in (3, 4, 5):
        raise NextframeError(f"{name}: an empty array {shape}: it holds no frames")
    if rank == 3 or (rank == 4 and shape[-1] in (1, 3, 4)):
        return None
    if rank in (4, 5):
        return shape[0]
    raise NextframeError(
        f"{name}: an array of rank {rank} {shape}; expected one clip (T, H, W[, C]) or "
        "clips (N, T, H, W[, C])"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# -- finding a file's clips -------------------------------------------------------------------


def file_kind(path: Path) -> str | None:
    """What a file holds, told by its content where it has a signature (a GIF, a `.npy`, an
    `.npz`), else by its suffix (videos); None for a file that is no clip."""
    try:
        with path.open("rb") as file:
            magic = file.read(6)
    except OSError as exc:
        raise NextframeError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if magic in GIF_MAGIC:
        return "gif"
    if magic == NPY_MAGIC:
        return "npy"
    if magic[:4] == ZIP_MAGIC and path.suffix.lower() == ".npz":
        return "npz"
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in (".gif", *ARRAY_SUFFIXES):
        expected = "a GIF" if suffix == ".gif" else f"a {suffix} array"
        raise NextframeError(f"{path}: not {expected} (unrecognised file header)")
    return None


def clips_of(
    path: Path,
    name: str | None = None,
    *,
    npz_members: list[str] | None = None,
    passed_over: list[str] | None = None,
) -> list[Clip]:
    """Every clip a path holds: a folder of numbered images is one clip, a big array one per
    row, an `.npz` one per member (those named in `npz_members`, else each that can be a clip:
    the others are added to `passed_over`); anything else one. Errors name the file as
    `name`. Arrays are not read here, only their headers."""
    path = Path(path)
    name = name or str(path)
    if path.is_dir():
        if not numbered_images(path):
            raise NextframeError(f"{name}: a folder with no PNG, JPEG or TIFF frames")
        return [Clip(name, path, "images")]
    if not path.exists():
        raise NextframeError(f"{name}: file not found")
    if path.stat().st_size == 0:
        raise NextframeError(f"{name}: an empty file (0 bytes)")
    kind = file_kind(path)
    if kind is None:
        raise NextframeError(
            f"{name}: not a clip: read are {', '.join(CLIP_SUFFIXES)} files and folders of "
            "numbered PNG/JPEG/TIFF frames"
        )
    if kind == "npy":
        clip = Clip(name, path, "array")
        return _array_clips(clip, _load_array(clip).shape)
    if kind == "npz":
        return _npz_clips(path, name, npz_members, passed_over if passed_over is not None else [])
    return [Clip(name, path, kind)]


def _npz_clips(
    path: Path, name: str, picked: list[str] | None, passed_over: list[str]
) -> list[Clip]:
    """The clips of an `.npz`'s members, told from their `.npy` headers (no member is
    decompressed beyond its header)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {
                m[: -len(".npy")] if m.endswith(".npy") else m: m for m in archive.namelist()
            }
            keys = sorted(members) if picked is None else list(picked)
            missing = [key for key in keys if key not in members]
            if missing:
                raise NextframeError(
                    f"{name}: has no member {', '.join(missing)} (its members: "
                    f"{', '.join(sorted(members))}; data.npz_members names the members to read)"
                )
            headers = {key: _member_header(archive, members[key], f"{name}:{key}") for key in keys}
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise NextframeError(f"{name}: truncated or corrupt .npz ({_first_line(exc)})") from None
    clips = []
    for key, header in headers.items():
        member = f"{name}:{key}"
        why_not = _why_no_clip(header)
        if why_not is not None and picked is None:
            passed_over.append(f"{member} {why_not}")
            continue
        if header is None or header[1].hasobject:
            raise NextframeError(f"{member}: {why_not}; only plain numeric arrays are read")
        clips += _array_clips(Clip(member, path, "array", key=key), header[0])
    return clips


def _member_header(
    archive: zipfile.ZipFile, member: str, name: str
) -> tuple[tuple, np.dtype] | None:
    """(shape, dtype) from a zip member's `.npy` header; None for a member that is no `.npy`.
    A corrupt member is one line naming it as `name`."""
    try:
        return _read_member_header(archive, member)
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise NextframeError(f"{name}: truncated or corrupt array ({_first_line(exc)})") from None


def _read_member_header(archive: zipfile.ZipFile, member: str) -> tuple[tuple, np.dtype] | None:
    with archive.open(member) as file:
        try:
            version = np.lib.format.read_magic(file)
        except ValueError:
            return None
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(file)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(file)
        else:  # a rare header version: read the member whole to learn its shape
            file.seek(0)
            array = np.lib.format.read_array(file, allow_pickle=False)
            shape, dtype = array.shape, array.dtype
    return tuple(shape), dtype


def _why_no_clip(header: tuple[tuple, np.dtype] | None) -> str | None:
    """Why an `.npz` member cannot be a clip, for the summary; None if it can."""
    if header is None:
        return "(not a .npy array)"
    shape, dtype = header
    if dtype.hasobject:
        return "(Python objects)"
    if dtype.kind not in "buif":
        return f"({dtype})"
    if not 3 <= len(shape) <= 5:
        return str(shape)
    return None


def _array_clips(clip: Clip, shape: tuple[int, ...]) -> list[Clip]:
    count = array_clip_count(shape, clip.name)
    if count is None:
        return [clip]
    return [
        Clip(f"{clip.name}[{i}]", clip.path, "array", key=clip.key, index=i) for i in range(count)
    ]


def one_clip(path: Path, name: str | None, notes: ReadNotes) -> Clip:
    """The one clip a path holds, for prediction; a file of none or of several is refused,
    named whole (a name with `[` in it too)."""
    name = name or str(path)
    clips = clips_of(Path(path), name, passed_over=notes.passed_over)
    if not clips:
        raise NextframeError(f"{name}: holds no clip ({', '.join(notes.passed_over)})")
    if len(clips) != 1:
        raise NextframeError(f"{name}: holds {len(clips)} clips, not one")
    return clips[0]


# -- a user's clip for prediction ---------------------------------------------------------------


def read_clip(
    path: str | os.PathLike[str], fmt: FrameFormat, name: str | None = None
) -> tuple[np.ndarray, ReadNotes]:
    """One clip's frames conformed to `fmt` as float32 (T, size, size, channels) in [0, 1],
    with what reading changed; at least `MIN_CONTEXT_FRAMES` frames."""
    notes = ReadNotes()
    clip = one_clip(Path(path), name, notes)
    frames = [to_unit(frame) for frame in clip.frames(fmt, notes)]
    if len(frames) < MIN_CONTEXT_FRAMES:
        raise NextframeError(
            f"{clip.name}: needs at least {MIN_CONTEXT_FRAMES} context frames, got {len(frames)}"
        )
    return np.stack(frames), notes


# -- the end of a user's clip, at the model's rate ----------------------------------------------


def read_clip_tail(
    path: str | os.PathLike[str], fmt: FrameFormat, n_frames: int, name: str | None = None
) -> tuple[np.ndarray, ReadNotes, int]:
    """The last `n_frames` frames of one clip at the model's rate (every `fmt.frame_stride`-th,
    counting back from the clip's last frame), conformed to `fmt` as `read_clip` does; with
    what reading changed and how many frames the clip has. Never more than the frames that
    can be kept is held: video, GIFs and images are decoded a frame at a time into a bounded
    queue; of an array only those frames are read (a `.npy` memory-mapped, an `.npz` member
    streamed)."""
    from collections import deque

    notes = ReadNotes()
    clip = one_clip(Path(path), name, notes)
    stride, span = fmt.frame_stride, (n_frames - 1) * fmt.frame_stride + 1
    if clip.kind == "array":
        n_total, indexed = _array_tail(clip, span)
        tail = [conform(frame, fmt, clip.name, notes, t) for t, frame in indexed]
    else:
        window: deque[np.ndarray] = deque(maxlen=span)
        n_total = 0
        for frame in clip.frames(fmt, notes):
            window.append(frame)
            n_total += 1
        tail = list(window)
    kept = tail[(len(tail) - 1) % stride :: stride]
    if len(kept) < MIN_CONTEXT_FRAMES:
        every = f" (one in {stride} of its {n_total})" if stride > 1 else ""
        raise NextframeError(
            f"{clip.name}: needs at least {MIN_CONTEXT_FRAMES} context frames, got "
            f"{len(kept)}{every}"
        )
    return np.stack([to_unit(frame) for frame in kept]), notes, n_total


def _array_tail(clip: Clip, span: int) -> tuple[int, list[tuple[int, np.ndarray]]]:
    """An array clip's frame count and its last `span` frames, each with its index."""
    if clip.key is not None:
        streamed = _npz_member_tail(clip, span)
        if streamed is not None:
            return streamed
    array = _load_array(clip)  # a .npy is memory-mapped: only the frames taken are read
    n_total = len(array)
    first = max(0, n_total - span)
    return n_total, [(t, np.asarray(array[t])) for t in range(first, n_total)]


def _npz_member_tail(clip: Clip, span: int) -> tuple[int, list[tuple[int, np.ndarray]]] | None:
    """`_array_tail` for an `.npz` member, read as a stream: the frames before the tail are
    decompressed and passed over, never held. None for a member this cannot stream (a
    Fortran-ordered or structured array): it is loaded whole instead."""
    import zipfile
    import zlib

    try:
        with zipfile.ZipFile(clip.path) as archive, archive.open(f"{clip.key}.npy") as member:
            version = np.lib.format.read_magic(member)
            if version not in ((1, 0), (2, 0)):
                return None
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran_order, dtype = read_header(member)
            if fortran_order or dtype.hasobject or len(shape) < 3:
                return None
            clip_shape = shape if clip.index is None else shape[1:]
            n_total, frame_shape = clip_shape[0], clip_shape[1:]
            frame_bytes = int(np.prod(frame_shape)) * dtype.itemsize
            first = max(0, n_total - span)
            before = (0 if clip.index is None else clip.index * n_total) + first
            _pass_over(member, before * frame_bytes)
            frames = []
            for t in range(first, n_total):
                data = member.read(frame_bytes)
                if len(data) != frame_bytes:
                    raise EOFError(f"frame {t + 1} of {n_total} is cut short")
                frames.append((t, np.frombuffer(data, dtype).reshape(frame_shape)))
            return n_total, frames
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
        raise NextframeError(f"{clip.name}: truncated or corrupt array ({exc})") from None


def _pass_over(stream, n_bytes: int, chunk: int = 1 << 16) -> None:
    """Read `n_bytes` of `stream` and drop them, a chunk at a time (a zip member's own
    forward seek reads 16 MiB at once)."""
    while n_bytes > 0:
        data = stream.read(min(chunk, n_bytes))
        if not data:
            raise EOFError("the array ends before its last frame")
        n_bytes -= len(data)
