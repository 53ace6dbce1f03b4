"""The model's frames: their format (`FrameFormat`), and uint8 frames <-> float32 frames in
[0, 1], on the host (numpy) or on the device that trains (Keras ops). The clip decoder
(`nextframe.clips`) brings other frames to this format; nothing here reads a file.

A batch crosses to the accelerator as uint8 clips (B, T, H, W), 8x smaller than the float32
input and target pairs it stands for, or as `Recipes` of freshly drawn sequences (digits and
their places), 40x smaller still. Both become float32 frames in [0, 1] here, with Keras ops,
so the host only draws random numbers and a GPU is never waiting for it to paint pixels.
Keras is imported by the device functions only: the format and the host converters serve the
decoder, predict and serving before any backend loads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from nextframe.params import DataParams
from nextframe.rain import RainScale

# The fewest context frames the model predicts from.
MIN_CONTEXT_FRAMES = 2
# value / 255 for every uint8 value, rounded once here: XLA on CPU divides with a reciprocal,
# which differs from numpy's division in the last bit for half of the values.
UNIT_VALUES = np.arange(256, dtype=np.float32) / np.float32(255.0)
# A rain code's model value (`nextframe.rain`): code / 254, and no data (255) read as dry.
RAIN_VALUES = np.append(np.arange(255, dtype=np.float32) / np.float32(254.0), np.float32(0.0))
RAIN_NO_DATA = 255


@dataclass(frozen=True)
class FrameFormat:
    """The model's frames: `size` x `size` pixels of `channels`, reached from other shapes by
    `aspect` (crop | pad | stretch); float input is read in `value_range` units. A radar
    model's frames are rain rates on its `rain` scale, of any size (`size` is its training
    crop's): it reads whole composites as they are. `frame_stride`: the model was trained on
    every k-th frame of its clips, so a clip is read at that rate; `n_context`: the context
    frames it was trained on (None: not recorded; no part of the format's identity)."""

    size: int
    channels: int
    aspect: str = "crop"
    value_range: tuple[float, float] | None = None
    rain: RainScale | None = None
    frame_stride: int = 1
    n_context: int | None = field(default=None, compare=False)

    @classmethod
    def of(cls, data: DataParams, n_context: int | None = None) -> FrameFormat:
        """The frames `data` params ask for; a model's format also records its `n_context`."""
        stride = data.frame_stride  # read for every source: one entry in dvc.yaml's params
        if data.source != "folder":  # only a folder's clips are strided at ingest
            stride = 1
        if data.is_radar:
            return cls(data.radar.crop, 1, rain=RainScale.of(data.radar), n_context=n_context)
        value_range = None if data.value_range is None else tuple(data.value_range)
        return cls(
            data.frame_size, data.channels, data.aspect, value_range, None, stride, n_context
        )

    @property
    def is_rain(self) -> bool:
        return self.rain is not None

    @property
    def shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one frame."""
        return self.size, self.size, self.channels

    def to_config(self) -> dict[str, Any]:
        config = asdict(self)
        if self.rain is None:
            config.pop("rain")  # the config of a model of any other source, as before
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FrameFormat:
        value_range = config.get("value_range")
        rain = config.get("rain")
        return cls(
            int(config["size"]),
            int(config["channels"]),
            str(config.get("aspect", "crop")),
            None if value_range is None else (float(value_range[0]), float(value_range[1])),
            None if rain is None else RainScale.from_config(rain),
            int(config.get("frame_stride", 1)),  # saved before strides were recorded: 1
            None if config.get("n_context") is None else int(config["n_context"]),
        )


def to_unit(frames: np.ndarray) -> np.ndarray:
    """On the host: uint8 frames (any shape) -> float32 in [0, 1] (divided by 255); float
    frames, already in [0, 1], as float32."""
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return frames.astype(np.float32) / np.float32(255.0)
    return frames.astype(np.float32, copy=False)


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """On the host: float frames in [0, 1] -> uint8, clipped to [0, 1] and rounded to the
    nearest of 256 levels (not truncated); uint8 frames as they are."""
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return frames
    return np.rint(np.clip(frames, 0.0, 1.0) * 255.0).astype(np.uint8)


def from_unit(frames: np.ndarray, fmt: FrameFormat) -> np.ndarray:
    """Model frames in [0, 1] back in the data's units: `fmt.value_range`, if it has one."""
    if fmt.value_range is None:
        return frames
    low, high = fmt.value_range
    return (low + np.asarray(frames, dtype=np.float64) * (high - low)).astype(np.float32)


def uint8_to_unit(values):
    """On the device: uint8 values (any shape, any integer or integral float dtype) -> float32
    in [0, 1], equal to `to_unit` on every backend."""
    from keras import ops

    return ops.take(ops.convert_to_tensor(UNIT_VALUES), ops.cast(values, "int32"))


def render_recipes(digits_uint8, top_left, frame_size: int):
    """Digits (B, D, 28, 28) at pixel places (B, D, T, 2) -> (B, T, S, S, 1) float32 frames.

    Each digit is placed by two one-hot matrix products (rows, then columns) on its integer
    pixel values, so every output pixel receives exactly one digit pixel, exactly even in a
    GPU's TF32 or bf16 matrix units: the result equals `nextframe.data.moving_mnist.render`
    bit for bit, on any backend and device.
    """
    from keras import ops

    digits = ops.cast(digits_uint8, "float32")[:, :, None]  # (B, D, 1, 28, 28)
    digit_size = digits.shape[-1]
    canvas = ops.arange(frame_size, dtype="int32")
    offsets = ops.arange(digit_size, dtype="int32")
    places = ops.cast(top_left, "int32")[..., None] + offsets  # (B, D, T, 2, 28)
    # one_hot[..., i, s] = 1 where digit pixel i lands on canvas pixel s
    rows = ops.cast(ops.equal(places[..., 0, :, None], canvas), "float32")  # (B, D, T, 28, S)
    cols = ops.cast(ops.equal(places[..., 1, :, None], canvas), "float32")
    placed = ops.matmul(ops.matmul(ops.swapaxes(rows, -1, -2), digits), cols)  # (B,D,T,S,S)
    return uint8_to_unit(ops.max(placed, axis=1))[..., None]


def rain_codes_to_frames(codes_uint8):
    """Radar clips of rain codes (B, T, H, W, 1) -> float32 model values, no data as dry."""
    from keras import ops

    return ops.take(ops.convert_to_tensor(RAIN_VALUES), ops.cast(codes_uint8, "int32"))


def rain_valid(codes_uint8):
    """1.0 where a radar clip has data, 0.0 where it has none (outside the domain)."""
    from keras import ops

    return ops.cast(ops.not_equal(ops.cast(codes_uint8, "int32"), RAIN_NO_DATA), "float32")


def batch_to_frames(batch, frame_size: int, rain: bool = False):
    """A training batch as `nextframe.data.dataset` hands it out -> float32 frames."""
    if isinstance(batch, dict):
        return render_recipes(batch["digits"], batch["top_left"], frame_size)
    return rain_codes_to_frames(batch) if rain else uint8_to_unit(batch)
