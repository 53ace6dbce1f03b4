"""The Lagrangian formulation (`nextframe.domains.rain.lagrangian`): motion from pysteps' optical
flow, the network in the frame of the moving rain, each lead advected to its time."""

import numpy as np
import pytest

from nextframe.domains.rain.forecast import nowcast_values
from nextframe.domains.rain.formulation import Formulation
from nextframe.domains.rain.lagrangian import (
    advect_steps,
    context_to_lagrangian,
    displacements,
    match_distribution,
    targets_to_lagrangian,
    warped,
    window_to_lagrangian,
)
from nextframe.domains.rain.nowcast import motion_field
from nextframe.domains.rain.scale import RainScale
from nextframe.errors import NextframeError
from nextframe.frames import FrameFormat
from nextframe.motion import pysteps
from nextframe.params import Params, load_params

from . import helpers

SIZE = 128
SPEED = (2.0, 1.0)  # pixels per step: x (columns), y (rows)
N_CONTEXT, HORIZON = 4, 6
SCALE = RainScale()


def blobs_at(step: float) -> np.ndarray:
    """(SIZE, SIZE) mm/h: three rain cells of different sizes and peaks, moved `step` steps."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    rain = np.zeros((SIZE, SIZE))
    for row, col, width, peak in ((40, 30, 6, 20.0), (80, 50, 9, 8.0), (60, 80, 4, 40.0)):
        row, col = row + SPEED[1] * step, col + SPEED[0] * step
        rain += peak * np.exp(-((rows - row) ** 2 + (cols - col) ** 2) / (2 * width**2))
    return rain.astype(np.float32)


def moving_window() -> np.ndarray:
    """(N_CONTEXT + HORIZON, SIZE, SIZE) mm/h of the cells moving at `SPEED`."""
    return np.stack([blobs_at(t) for t in range(N_CONTEXT + HORIZON)])


def repeat_last(values: np.ndarray, horizon: int) -> np.ndarray:
    """A network that has learned nothing: in the frame of the rain, the rain stays."""
    return np.repeat(values[:, -1:], horizon, axis=1)


def peak_of(field: np.ndarray) -> tuple[int, int]:
    row, col = np.unravel_index(np.nanargmax(field), field.shape)
    return int(row), int(col)


def test_lead_k_of_a_network_that_learned_nothing_is_pysteps_extrapolation():
    window = moving_window()
    context_mmh = window[None, :N_CONTEXT]
    values = nowcast_values(
        SCALE.to_unit(context_mmh),
        context_mmh,
        HORIZON,
        Formulation("lagrangian"),
        repeat_last,
    )[0]
    velocity = motion_field(context_mmh[0])
    extrapolation = pysteps().nowcasts.get_method("extrapolation")
    expected = extrapolation(
        SCALE.to_unit(context_mmh[0, -1]).astype(np.float64), velocity, HORIZON
    )
    np.testing.assert_allclose(values, np.nan_to_num(expected, nan=0.0), atol=1e-5)
    # ...and it is where the cells went: the strongest cell's peak, k steps on.
    for lead in (1, 3, HORIZON):
        truth = peak_of(window[N_CONTEXT - 1 + lead])
        found = peak_of(values[lead - 1])
        assert abs(found[0] - truth[0]) <= 1 and abs(found[1] - truth[1]) <= 1, (lead, found)


def test_eulerian_formulation_hands_the_network_the_frames_as_they_are():
    window = moving_window()
    context_mmh = window[None, :N_CONTEXT]
    values = nowcast_values(
        SCALE.to_unit(context_mmh), context_mmh, HORIZON, Formulation(), repeat_last
    )
    np.testing.assert_array_equal(values, repeat_last(SCALE.to_unit(context_mmh), HORIZON))


def test_step_by_step_advection_equals_pysteps_in_one_call():
    window = SCALE.to_unit(moving_window())
    velocity = motion_field(moving_window()[:N_CONTEXT])
    field = window[N_CONTEXT - 1]
    moved = advect_steps(np.repeat(field[None], HORIZON, axis=0), velocity)
    extrapolate = pysteps().extrapolation.get_method("semilagrangian")
    at_once = extrapolate(field.astype(np.float64), velocity, HORIZON, allow_nonfinite_values=True)
    np.testing.assert_allclose(moved, at_once, atol=1e-6)


def test_trajectories_found_once_carry_any_field_as_advection_does_and_shift_it():
    window = SCALE.to_unit(moving_window())
    velocity = motion_field(moving_window()[:N_CONTEXT])
    fields = window[N_CONTEXT - 1 : N_CONTEXT - 1 + HORIZON]  # a different field each lead
    paths = displacements(velocity, HORIZON)
    carried = np.stack([warped(f, d, (0.0, 0.0)) for f, d in zip(fields, paths, strict=True)])
    np.testing.assert_allclose(carried, advect_steps(fields, velocity), atol=1e-6)
    # a uniform shift of (3, -2) pixels moves the rain 3 columns right and 2 rows up
    shifted = warped(fields[0], paths[0], (3.0, -2.0))
    row, col = peak_of(carried[0])
    assert peak_of(shifted) == (row - 2, col + 3)


def test_in_the_frame_of_the_rain_a_moving_cell_stands_still():
    window = SCALE.to_unit(moving_window())
    velocity = motion_field(moving_window()[:N_CONTEXT])
    context = context_to_lagrangian(window[:N_CONTEXT], velocity)
    targets = targets_to_lagrangian(window[N_CONTEXT:], velocity)
    last = peak_of(window[N_CONTEXT - 1])
    for frame in (*context, *targets):
        row, col = peak_of(frame)
        assert abs(row - last[0]) <= 1 and abs(col - last[1]) <= 1
    # Eulerian, the strongest cell moved 2 px a step: 18 columns over the window.
    assert peak_of(window[-1])[1] - peak_of(window[0])[1] == 18


def test_probability_matching_gives_each_lead_the_last_frames_rain_and_keeps_ranks():
    rng = np.random.default_rng(0)
    last = SCALE.to_unit(moving_window()[N_CONTEXT - 1])
    last[:5] = np.nan  # outside the domain: neither matched nor a target value
    spread = np.linspace(0.1, 0.3, SIZE * SIZE, dtype=np.float32)  # no ties: ranks are clear
    blurred = np.stack([rng.permutation(spread).reshape(SIZE, SIZE) for _ in range(2)])
    matched = match_distribution(blurred, last)
    valid = np.isfinite(last)
    for lead, before in zip(matched, blurred, strict=True):
        np.testing.assert_allclose(np.sort(lead[valid]), np.sort(last[valid]), atol=1e-6)
        order = np.argsort(before[valid], kind="stable")
        assert np.all(np.diff(lead[valid][order]) >= 0)  # ranks kept
        np.testing.assert_array_equal(lead[~valid], before[~valid])


def radar_edits(**radar) -> dict:
    return helpers.merged(helpers.RADAR_TINY, {"data": {"radar": radar}})


def radar_params(**radar) -> Params:
    return Params.model_validate(helpers.tiny_params(radar_edits(**radar)))


def test_the_model_records_its_formulation_and_video_models_record_none():
    params = radar_params(formulation="lagrangian", probmatching="cdf")
    fmt = FrameFormat.of(params.data, 4)
    config = fmt.to_config()
    assert config["formulation"] == {"frame": "lagrangian", "probmatching": "cdf"}
    assert FrameFormat.from_config(config) == fmt
    # a radar model saved before formulations is Eulerian, without matching
    del config["formulation"]
    assert FrameFormat.from_config(config).formulation == Formulation()
    video = FrameFormat.of(Params.model_validate(helpers.tiny_params()).data)
    assert "formulation" not in video.to_config()


@pytest.mark.parametrize(("key", "value"), [("formulation", "lagrange"), ("probmatching", "mean")])
def test_an_unknown_formulation_is_one_line(tmp_path, key, value):
    path = helpers.write_params(tmp_path, helpers.tiny_params(radar_edits(**{key: value})))
    with pytest.raises(NextframeError) as caught:
        load_params(path)
    message = str(caught.value)
    assert f"data.radar.{key}" in message and "\n" not in message


def test_a_dry_window_has_no_motion_to_find_and_stays_as_it_is():
    window_mmh = np.zeros((N_CONTEXT + HORIZON, SIZE, SIZE), np.float32)
    window_mmh[:, :4] = np.nan  # outside the domain
    values = SCALE.to_unit(window_mmh)
    moved, found = window_to_lagrangian(values, window_mmh, N_CONTEXT)
    assert not found
    np.testing.assert_array_equal(moved, values)
