"""uint8 frames become the model's float32 frames: on the host, or on the device that trains.

A batch crosses to the accelerator as uint8 clips (B, T, H, W), 8x smaller than the float32
input and target pairs it stands for, or as `Recipes` of freshly drawn sequences (digits and
their places), 40x smaller still. Both become float32 frames in [0, 1] here, with Keras ops,
so the host only draws random numbers and a GPU is never waiting for it to paint pixels.
"""

from __future__ import annotations

import numpy as np
from keras import ops

# value / 255 for every uint8 value, rounded once here: XLA on CPU divides with a reciprocal,
# which differs from numpy's division in the last bit for half of the values.
UNIT_VALUES = np.arange(256, dtype=np.float32) / np.float32(255.0)
# A rain code's model value (`nextframe.rain`): code / 254, and no data (255) read as dry.
RAIN_VALUES = np.append(np.arange(255, dtype=np.float32) / np.float32(254.0), np.float32(0.0))
RAIN_NO_DATA = 255


def to_float_frames(sequences_uint8: np.ndarray) -> np.ndarray:
    """On the host: (N, T, H, W, C) uint8 -> float32 in [0, 1], the model's input."""
    return np.asarray(sequences_uint8, dtype=np.float32) / np.float32(255.0)


def uint8_to_unit(values):
    """uint8 values (any shape, any integer or integral float dtype) -> float32 in [0, 1],
    equal to numpy's `value / 255` on every backend."""
    return ops.take(ops.convert_to_tensor(UNIT_VALUES), ops.cast(values, "int32"))


def clips_to_frames(clips_uint8):
    """(B, T, H, W, C) uint8 -> float32 in [0, 1], as `to_float_frames` does."""
    return uint8_to_unit(clips_uint8)


def render_recipes(digits_uint8, top_left, frame_size: int):
    """Digits (B, D, 28, 28) at pixel places (B, D, T, 2) -> (B, T, S, S, 1) float32 frames.

    Each digit is placed by two one-hot matrix products (rows, then columns) on its integer
    pixel values, so every output pixel receives exactly one digit pixel, exactly even in a
    GPU's TF32 or bf16 matrix units: the result equals `nextframe.data.moving_mnist.render`
    bit for bit, on any backend and device.
    """
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
    return ops.take(ops.convert_to_tensor(RAIN_VALUES), ops.cast(codes_uint8, "int32"))


def rain_valid(codes_uint8):
    """1.0 where a radar clip has data, 0.0 where it has none (outside the domain)."""
    return ops.cast(ops.not_equal(ops.cast(codes_uint8, "int32"), RAIN_NO_DATA), "float32")


def batch_to_frames(batch, frame_size: int, rain: bool = False):
    """A training batch as `nextframe.data.dataset` hands it out -> float32 frames."""
    if isinstance(batch, dict):
        return render_recipes(batch["digits"], batch["top_left"], frame_size)
    return rain_codes_to_frames(batch) if rain else clips_to_frames(batch)
