import numpy as np
import pytest
from PIL import Image

from nextframe.domains.rain.render import (
    BLANK_RGB,
    DRY_RGB,
    OUTSIDE_RGB,
    colour_scale,
    nowcast_frames,
    nowcast_grid,
    precip_rgb,
)
from nextframe.errors import NextframeError
from nextframe.render import save_gif, save_png

N_CONTEXT, HORIZON, HEIGHT, WIDTH = 4, 6, 20, 24


def count_colour(image_rgb: np.ndarray, colour) -> int:
    return int(np.all(image_rgb == np.asarray(colour, dtype=np.uint8), axis=-1).sum())


def rain_sequence(n_frames: int, seed: int = 0) -> np.ndarray:
    """Rain from dry to very heavy, with a NaN corner outside the 'radar domain'."""
    rain = np.random.default_rng(seed).gamma(0.5, 4.0, size=(n_frames, HEIGHT, WIDTH))
    rain[:, :5, :5] = np.nan
    return rain.astype(np.float32)


def inputs(n_forecasts: int):
    context, truth = rain_sequence(N_CONTEXT), rain_sequence(HORIZON, seed=1)
    names = ["ConvLSTM", "extrapolation", "S-PROG"][:n_forecasts]
    forecasts = {name: rain_sequence(HORIZON, seed=2 + i) for i, name in enumerate(names)}
    return context, truth, forecasts


def test_nan_is_grey_and_dry_is_white():
    rain = np.array([[np.nan, 0.0], [0.05, -1.0]])
    rgb = precip_rgb(rain)
    assert rgb.dtype == np.uint8
    assert rgb.shape == (2, 2, 3)
    assert tuple(rgb[0, 0]) == OUTSIDE_RGB
    for pixel in (rgb[0, 1], rgb[1, 0], rgb[1, 1]):
        assert tuple(pixel) == DRY_RGB


def test_each_level_has_its_own_colour_and_heavy_differs_from_light():
    levels = colour_scale().levels_mmh
    rain = levels[None, :]  # where each class starts; the last starts the one above the scale
    rgb = precip_rgb(rain)[0]
    colours = {tuple(pixel) for pixel in rgb}
    assert len(colours) == len(rain[0])
    assert DRY_RGB not in colours
    assert OUTSIDE_RGB not in colours
    light, heavy = precip_rgb(np.array([[0.5, 50.0]]))[0]
    assert tuple(light) != tuple(heavy)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_precip_rgb_matches_pysteps_colour_map():
    colour_scale()  # imports pysteps quietly
    from pysteps.visualization.precipfields import get_colormap

    cmap, norm, _, _ = get_colormap("intensity", "mm/h", "pysteps")
    rain = np.geomspace(0.09, 150.0, 200)[None, :]
    expected = np.rint(np.asarray(cmap(norm(rain)))[..., :3] * 255).astype(np.uint8)
    np.testing.assert_array_equal(precip_rgb(rain), expected)


def test_precip_rgb_keeps_leading_axes():
    assert precip_rgb(np.zeros((2, 3, 5, 7))).shape == (2, 3, 5, 7, 3)


@pytest.mark.parametrize("n_forecasts", [0, 1, 3])
def test_nowcast_frames_shape_and_context_panels_blank(n_forecasts, tmp_path):
    context, truth, forecasts = inputs(n_forecasts)
    frames = nowcast_frames(context, truth, forecasts, timestep_minutes=5, scale=2.0)
    assert frames.dtype == np.uint8
    assert frames.shape[0] == N_CONTEXT + HORIZON
    assert frames.shape[1] >= 2 * HEIGHT
    assert frames.shape[2] > (1 + n_forecasts) * 2 * WIDTH
    # The NaN corner of every panel shows grey: truth only while observing, all when forecasting.
    assert count_colour(frames[0], OUTSIDE_RGB) >= 100
    assert count_colour(frames[-1], OUTSIDE_RGB) >= (1 + n_forecasts) * 100
    tile_pixels = 2 * HEIGHT * 2 * WIDTH
    assert count_colour(frames[0], BLANK_RGB) >= n_forecasts * tile_pixels
    assert count_colour(frames[-1], BLANK_RGB) < tile_pixels
    # Every frame carries its own time label, so no GIF writer merges two.
    assert len({frame.tobytes() for frame in frames}) == len(frames)
    save_gif(tmp_path / "nowcast.gif", frames, fps=4)
    assert Image.open(tmp_path / "nowcast.gif").n_frames == len(frames)


@pytest.mark.parametrize("scale", [0.4, 1.0, 3.0])
def test_nowcast_frames_scale_resizes_the_maps(scale):
    context, truth, forecasts = inputs(2)
    with_corner = nowcast_frames(context, truth, forecasts, 5, scale=scale)
    for rain in (context, truth, *forecasts.values()):
        rain[:, :5, :5] = 0.0
    without_corner = nowcast_frames(context, truth, forecasts, 5, scale=scale)
    corner_pixels = count_colour(with_corner[-1], OUTSIDE_RGB) - count_colour(
        without_corner[-1], OUTSIDE_RGB
    )
    assert corner_pixels == 3 * round(5 * scale) ** 2


@pytest.mark.parametrize("n_forecasts", [1, 3])
def test_nowcast_grid_shape(n_forecasts, tmp_path):
    context, truth, forecasts = inputs(n_forecasts)
    grid = nowcast_grid(context, truth, forecasts, 5, leads_to_show=[1, 3, 6], scale=3.0)
    assert grid.dtype == np.uint8
    assert grid.ndim == 3
    assert grid.shape[-1] == 3
    assert grid.shape[0] >= (1 + n_forecasts) * 3 * HEIGHT
    assert grid.shape[1] >= 4 * 3 * WIDTH
    # One NaN corner per map: truth at 0 min and 3 leads, each forecast at 3 leads.
    assert count_colour(grid, OUTSIDE_RGB) >= (4 + 3 * n_forecasts) * 15 * 15
    # Forecasts have no map at 0 min.
    assert count_colour(grid, BLANK_RGB) >= n_forecasts * 3 * HEIGHT * 3 * WIDTH
    save_png(tmp_path / "grid.png", grid)
    assert Image.open(tmp_path / "grid.png").size == (grid.shape[1], grid.shape[0])


def bad_calls():
    context, truth, forecasts = inputs(1)
    return {
        "context 2-D": lambda: nowcast_frames(context[0], truth, forecasts, 5),
        "truth 4-D": lambda: nowcast_frames(context, truth[None], forecasts, 5),
        "maps differ": lambda: nowcast_frames(context[:, :-1], truth, forecasts, 5),
        "forecast too short": lambda: nowcast_frames(context, truth, {"ConvLSTM": truth[:-1]}, 5),
        "zero timestep": lambda: nowcast_frames(context, truth, forecasts, 0),
        "zero scale": lambda: nowcast_frames(context, truth, forecasts, 5, scale=0),
        "lead 0": lambda: nowcast_grid(context, truth, forecasts, 5, [0, 1], 1.0),
        "lead past horizon": lambda: nowcast_grid(context, truth, forecasts, 5, [HORIZON + 1], 1),
        "rain 1-D": lambda: precip_rgb(np.zeros(4)),
        "rain as text": lambda: precip_rgb(np.array([["a", "b"]])),
    }


@pytest.mark.parametrize("case", list(bad_calls()))
def test_bad_input_raises_one_line_error(case):
    with pytest.raises(NextframeError) as raised:
        bad_calls()[case]()
    message = str(raised.value)
    assert message.startswith("radar render: ")
    assert "\n" not in message
