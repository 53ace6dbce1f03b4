import itertools

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from nextframe.errors import NextframeError
from nextframe.render import (
    CONTEXT_RGB,
    PREDICTED_RGB,
    comparison_frames,
    grid_image,
    save_gif,
    save_png,
)

N_CONTEXT, HORIZON, SIDE = 3, 2, 8
WHITE = np.array([255, 255, 255], dtype=np.uint8)  # only image content reaches 255; text does not


def count_color(image_rgb: np.ndarray, color) -> int:
    return int(np.all(image_rgb == np.asarray(color, dtype=np.uint8), axis=-1).sum())


def one_bright_pixel_sequence(n_sequences: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Truth has one white pixel in its first context frame; pred one in its first step."""
    truth = np.zeros((n_sequences, N_CONTEXT + HORIZON, SIDE, SIDE), dtype=np.float32)
    pred = np.zeros((n_sequences, HORIZON, SIDE, SIDE), dtype=np.float32)
    truth[:, 0, 2, 5] = 1.0
    pred[:, 0, 6, 1] = 1.0
    return truth, pred


@pytest.mark.parametrize("scale", [1, 3])
def test_comparison_frames_shape_and_nearest_neighbour_scale(scale):
    truth, pred = one_bright_pixel_sequence()
    frames = comparison_frames(truth[0], pred[0], N_CONTEXT, scale)
    assert frames.dtype == np.uint8
    assert frames.ndim == 4
    assert frames.shape[0] == N_CONTEXT + HORIZON
    assert frames.shape[-1] == 3
    assert frames.shape[2] > 3 * SIDE * scale
    # Context frame: the white pixel only in the truth panel (the prediction panel is greyed).
    assert count_color(frames[0], WHITE) == scale**2
    # First predicted frame: white in prediction and in |error| (truth is black there).
    assert count_color(frames[N_CONTEXT], WHITE) == 2 * scale**2


def test_comparison_frames_mark_context_green_and_predictions_red():
    truth, pred = one_bright_pixel_sequence()
    frames = comparison_frames(truth[0], pred[0], N_CONTEXT, 2)
    assert count_color(frames[0], CONTEXT_RGB) > 0
    assert count_color(frames[0], PREDICTED_RGB) == 0
    assert count_color(frames[-1], PREDICTED_RGB) > 0
    assert count_color(frames[-1], CONTEXT_RGB) == 0
    # Every frame differs (its counter), so no GIF writer can merge two of them.
    for earlier, later in itertools.pairwise(frames):
        assert not np.array_equal(earlier, later)


def test_uint8_and_float_inputs_render_the_same():
    truth, pred = one_bright_pixel_sequence()
    from_float = comparison_frames(truth[0], pred[0], N_CONTEXT, 1)
    as_uint8 = (truth[0] * 255).astype(np.uint8), (pred[0] * 255).astype(np.uint8)
    np.testing.assert_array_equal(comparison_frames(*as_uint8, N_CONTEXT, 1), from_float)


def test_comparison_frames_reject_a_wrong_context_length():
    truth, pred = one_bright_pixel_sequence()
    with pytest.raises(NextframeError, match="n_context"):
        comparison_frames(truth[0], pred[0], N_CONTEXT + 1, 1)


@pytest.mark.parametrize("scale", [1, 2])
def test_grid_image_shape_and_contents(scale):
    truth, pred = one_bright_pixel_sequence(n_sequences=2)
    grid = grid_image(truth, pred, N_CONTEXT, scale)
    assert grid.dtype == np.uint8
    assert grid.ndim == 3
    assert grid.shape[-1] == 3
    assert grid.shape[0] > 2 * 3 * SIDE * scale
    assert grid.shape[1] > (N_CONTEXT + HORIZON) * SIDE * scale
    # Per sequence: truth's pixel, plus pred's pixel in the prediction and the |error| rows.
    assert count_color(grid, WHITE) == 2 * 3 * scale**2


def test_grid_image_grows_with_the_number_of_sequences():
    one = grid_image(*one_bright_pixel_sequence(1), N_CONTEXT, 1)
    three = grid_image(*one_bright_pixel_sequence(3), N_CONTEXT, 1)
    assert three.shape[1] == one.shape[1]
    assert three.shape[0] > one.shape[0] + 2 * 3 * SIDE


def test_save_gif_writes_a_looping_gif_with_every_frame(tmp_path):
    truth, pred = one_bright_pixel_sequence()
    frames = comparison_frames(truth[0], pred[0], N_CONTEXT, 2)
    path = tmp_path / "sequence.gif"
    save_gif(path, frames, fps=4)

    assert path.read_bytes()[:6] == b"GIF89a"
    assert [p.name for p in tmp_path.iterdir()] == ["sequence.gif"]
    read_back = iio.imread(path, index=None)
    assert read_back.shape[0] == N_CONTEXT + HORIZON
    assert read_back.shape[1:3] == frames.shape[1:3]
    with Image.open(path) as gif:
        assert gif.info["loop"] == 0
        assert gif.info["duration"] == 250


def test_save_gif_rejects_float_frames(tmp_path):
    with pytest.raises(NextframeError, match="uint8 RGB"):
        save_gif(tmp_path / "bad.gif", np.zeros((2, 4, 4, 3)), fps=4)
    assert list(tmp_path.iterdir()) == []


def test_save_png_round_trips_exactly(tmp_path):
    grid = grid_image(*one_bright_pixel_sequence(2), N_CONTEXT, 1)
    path = tmp_path / "grid.png"
    save_png(path, grid)
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]
    np.testing.assert_array_equal(iio.imread(path), grid)
