"""The model's frames: their format (`FrameFormat`), and uint8 frames <-> float32 frames in
[0, 1], on the host (numpy) or on the device that trains (Keras ops). The clip decoder
(`nextframe.clips`) brings other frames to this format; nothing here reads a file.

A batch crosses to the accelerator as uint8 clips (B, T, H, W), 8x smaller than the float32
input and target pairs it stands for; its domain (`nextframe.domains`) turns it into the
model's values there, with Keras ops. Keras is imported by the device functions only: the
format and the host converters serve the decoder, predict and serving before any backend
loads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from nextframe.domains.rain.formulation import Formulation
from nextframe.domains.rain.scale import RainScale
from nextframe.params import DataParams

# The fewest context frames the model predicts from.
MIN_CONTEXT_FRAMES = 2
# value / 255 for every uint8 value, rounded once here: XLA on CPU divides with a reciprocal,
# which differs from numpy's division in the last bit for half of the values.
UNIT_VALUES = np.arange(256, dtype=np.float32) / np.float32(255.0)


@dataclass(frozen=True)
class FrameFormat:
    """The model's frames: `size` x `size` pixels of `channels`, reached from other shapes by
    `aspect` (crop | pad | stretch); float input is read in `value_range` units. A radar
    model's frames are rain rates on its `rain` scale, of any size (`size` is its training
    crop's): it reads whole composites as they are. `frame_stride`: the model was trained on
    every k-th frame of its clips, so a clip is read at that rate; `n_context`: the context
    frames it was trained on (None: not recorded; no part of the format's identity). A radar
    model records its `formulation` too (what it predicts, how its nowcast is made)."""

    size: int
    channels: int
    aspect: str = "crop"
    value_range: tuple[float, float] | None = None
    rain: RainScale | None = None
    frame_stride: int = 1
    n_context: int | None = field(default=None, compare=False)
    formulation: Formulation | None = None

    def __post_init__(self) -> None:
        if self.rain is not None and self.formulation is None:  # a rain model's: Eulerian
            object.__setattr__(self, "formulation", Formulation())

    @classmethod
    def of(cls, data: DataParams, n_context: int | None = None) -> FrameFormat:
        """The frames `data` params ask for; a model's format also records its `n_context`."""
        stride = data.frame_stride  # read for every source: one entry in dvc.yaml's params
        if data.source != "folder":  # only a folder's clips are strided at ingest
            stride = 1
        if data.is_radar:
            return cls(
                data.radar.crop,
                1,
                rain=RainScale.of(data.radar),
                n_context=n_context,
                formulation=Formulation.of(data.radar),
            )
        value_range = None if data.value_range is None else tuple(data.value_range)
        return cls(
            data.frame_size, data.channels, data.aspect, value_range, None, stride, n_context
        )

    @property
    def domain(self) -> str:
        """The name of the domain these frames belong to (`nextframe.domains.get_method`): a
        model records its rain scale, so its domain is read back from its config."""
        return "video" if self.rain is None else "rain"

    @property
    def shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one frame."""
        return self.size, self.size, self.channels

    def to_config(self) -> dict[str, Any]:
        config = asdict(self)
        if self.rain is None:  # the config of a model of any other source, as before
            config.pop("rain")
            config.pop("formulation")
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
            None if rain is None else Formulation.from_config(config.get("formulation")),
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
