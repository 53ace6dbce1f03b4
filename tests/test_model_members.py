"""The model's own ensemble (`nextframe.domains.rain.perturbed`): members grown around the
network's one forecast with STEPS' perturbations. Each member has the last frame's rain (its
wet area and intensities), members differ and spread more with lead time, the same seed gives
the same members in any process, and the members' mean stays where the rain went."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from nextframe.domains.rain.ensemble import LK_VELOCITY_PERTURBATIONS, EnsembleSpec, window_seed
from nextframe.domains.rain.forecast import nowcast_members
from nextframe.domains.rain.formulation import Formulation
from nextframe.domains.rain.nowcast import SPROG_CASCADE_LEVELS
from nextframe.domains.rain.perturbed import (
    MOTION_PERTURBATION_GAIN,
    bps_shifts,
    grown_around,
    grown_noise,
    level_statistics,
    member_seed,
    noise_level_stds,
    predictable_share,
)
from nextframe.errors import NextframeError
from nextframe.motion import pysteps

from .test_lagrangian import HORIZON, N_CONTEXT, SCALE, SIZE, moving_window, peak_of, repeat_last

SPEC = EnsembleSpec(n_members=3, pixel_km=1.0, timestep_minutes=5.0, network="mch")


def members_of(seed: int, frame: str = "lagrangian", spec: EnsembleSpec = SPEC) -> np.ndarray:
    """(M, HORIZON, SIZE, SIZE) model values around a network that learned nothing (in the
    frame of the rain: pysteps' extrapolation) on three moving rain cells."""
    context_mmh = moving_window()[None, :N_CONTEXT]
    return nowcast_members(
        SCALE.to_unit(context_mmh),
        context_mmh,
        HORIZON,
        Formulation(frame),
        repeat_last,
        grown_around(spec, [seed]),
    )[1][0]


def test_each_member_has_the_observed_rain_members_differ_and_spread_grows():
    members = members_of(seed=3)
    assert members.shape == (3, HORIZON, SIZE, SIZE) and np.isfinite(members).all()
    last = np.sort(SCALE.to_unit(moving_window()[N_CONTEXT - 1]).ravel())
    for member in members:
        for lead in member:  # the last frame's values, at other places
            np.testing.assert_allclose(np.sort(lead.ravel()), last, atol=1e-6)
    assert not np.allclose(members[0], members[1])
    spread = members.std(axis=0).mean(axis=(1, 2))
    assert spread[-1] > spread[0] > 0


def test_the_members_mean_is_where_the_rain_went():
    window = moving_window()
    mean = members_of(seed=3).mean(axis=0)
    for lead in (1, 3):
        truth, found = peak_of(window[N_CONTEXT - 1 + lead]), peak_of(mean[lead - 1])
        assert abs(found[0] - truth[0]) <= 3 and abs(found[1] - truth[1]) <= 3, (lead, found)


def test_the_same_seed_gives_the_same_members_in_any_process_another_seed_others():
    here = members_of(seed=11)
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        there = pool.submit(members_of, 11).result()
    np.testing.assert_array_equal(here, there)
    assert not np.allclose(here, members_of(seed=12))
    assert member_seed(42, 0, 3) == member_seed(42, 0, 3) != member_seed(42, 1, 3)
    assert member_seed(42, 0, 3) != window_seed(42, 0, 3)  # not STEPS' noise


def test_an_eulerian_models_members_grow_where_it_predicts():
    members = members_of(seed=3, frame="eulerian")
    assert members.shape == (3, HORIZON, SIZE, SIZE)
    assert not np.allclose(members[0], members[1])


def test_one_member_is_no_ensemble():
    one = EnsembleSpec(n_members=1, pixel_km=1.0, timestep_minutes=5.0)
    with pytest.raises(NextframeError, match="2 members or more, got 1"):
        members_of(seed=0, spec=one)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"members": 1}, "members must be 0 (one forecast) or 2 to 48, got 1"),
        ({"members": 49}, "members must be 0 (one forecast) or 2 to 48, got 49"),
        ({"members": 2.5}, "members must be 0 (one forecast) or 2 to 48, got 2.5"),
        ({"members": 12}, "members: 12 members of 2 clip(s), 12 frames of 710x640 hold 499 MB"),
        ({"members": 2, "pixel_km": 0.0}, "pixel_km must be a positive number, got 0.0"),
        ({"members": 2, "seed": -1}, "seed must be a whole number >= 0, got -1"),
    ],
)
def test_a_served_ensemble_is_refused_with_one_line_naming_its_param(params, message):
    """What `make serve` answers 400 with; `members` 0 (or absent) asks for one forecast."""
    from nextframe.domains.rain.domain import served_members

    shape = (2, 4, 640, 710)
    with pytest.raises(NextframeError) as refused:
        served_members(params, shape, 12, max_bytes=64 * 2**20)
    assert str(refused.value).startswith(message)
    assert served_members({"members": 0}, shape, 12, 64 * 2**20) is None
    assert served_members({"members": 2}, (1, 4, 64, 64), 12, 64 * 2**20) is not None


def test_a_members_motion_strays_as_pysteps_fitted_perturbation_scaled_by_the_gain():
    """pysteps' BPS perturbation for the network (its `noise.motion`, seeded alike), each
    lead's summed into the member's offset, `MOTION_PERTURBATION_GAIN` times as far."""
    velocity = np.stack([np.full((24, 24), 1.5), np.full((24, 24), -0.5)])
    motion = pysteps().noise.motion
    perturbator = motion.initialize_bps(
        velocity,
        1.0 / SPEC.pixel_km,
        SPEC.timestep_minutes,
        randstate=np.random.RandomState(5),
        **LK_VELOCITY_PERTURBATIONS["mch"],
    )
    steps = [motion.generate_bps(perturbator, 5.0 * (k + 1)).mean(axis=(1, 2)) for k in range(3)]
    shifts = bps_shifts(velocity, 3, SPEC, seed=5)
    np.testing.assert_allclose(shifts, MOTION_PERTURBATION_GAIN * np.cumsum(steps, axis=0))
    assert MOTION_PERTURBATION_GAIN == 2.0


def cascade_stds(field: np.ndarray, bandpass: dict) -> np.ndarray:
    levels = pysteps().cascade.decomposition.decomposition_fft(
        field, bandpass, normalize=False, compute_stats=False
    )["cascade_levels"]
    return np.asarray(levels).std(axis=(1, 2))


def bandpass_of(size: int) -> dict:
    return pysteps().cascade.bandpass_filters.filter_gaussian((size, size), SPROG_CASCADE_LEVELS)


def test_forecast_detail_beyond_what_the_context_predicts_is_taken_out_per_level():
    """STEPS' deterministic share: at lead k a level keeps at most its context std times
    rho^k; a forecast within it is left as it is."""
    rng = np.random.default_rng(0)
    size, bandpass = 64, bandpass_of(64)
    last = rng.normal(size=(size, size))
    context = np.stack([last + 0.3 * rng.normal(size=(size, size)), last])  # rho near 0.9
    stds, correlations = level_statistics(context, bandpass)
    assert (correlations > 0.5).all()
    calm = np.stack([context[-1] * 0.2] * 3)  # every level well within its share
    np.testing.assert_allclose(
        predictable_share(calm, bandpass, stds, correlations), calm, atol=1e-5
    )
    wild = np.stack([context[-1] * 5.0] * 3)
    kept = predictable_share(wild, bandpass, stds, correlations)
    for lead, field in enumerate(kept):
        np.testing.assert_allclose(
            cascade_stds(field, bandpass), stds * correlations ** (lead + 1), rtol=0.15
        )


def test_each_levels_noise_grows_to_the_std_it_is_given():
    rng = np.random.default_rng(1)
    size, bandpass = 128, bandpass_of(128)
    context = rng.normal(size=(2, size, size))
    stds = 0.5 * level_statistics(context, bandpass)[0]
    correlations = np.zeros(SPROG_CASCADE_LEVELS)  # no memory: the whole std at lead 1
    structure = pysteps().noise.fftgenerators.initialize_nonparam_2d_fft_filter(context[-1])
    noise = grown_noise(structure, bandpass, stds, correlations, 2, seed=0)
    np.testing.assert_allclose(cascade_stds(noise[0], bandpass), stds, rtol=0.35)


def test_noise_is_scaled_down_at_small_scales_where_the_rain_is_smooth_inside():
    """Over the whole field a smooth rain area's small scales are mostly its edge, which each
    member gets again from its matched wet area: measured inside the rain, its small-scale
    noise is a fraction of what rain rough inside gets, for the same whole-field std; the
    same seed gives the same stds, and rain without a spread of values the stds given."""
    size, bandpass = 128, bandpass_of(128)
    rows, cols = np.mgrid[:size, :size]
    distance = np.hypot(rows - 64, cols - 64)
    disk = distance < 30
    smooth = np.where(disk, 0.6 - distance / 100, 0.0)  # heaviest in the middle
    rough = np.where(disk, 0.5 + 0.1 * np.random.default_rng(2).normal(size=(size, size)), 0.0)
    share = {}
    for name, field in (("smooth", smooth), ("rough", rough)):
        whole, _ = level_statistics(np.stack([field, field]), bandpass)
        structure = pysteps().noise.fftgenerators.initialize_nonparam_2d_fft_filter(field)
        stds = noise_level_stds(field, bandpass, structure, 4, whole)
        np.testing.assert_array_equal(stds, noise_level_stds(field, bandpass, structure, 4, whole))
        share[name] = stds / whole
    print({name: np.round(ratio, 2) for name, ratio in share.items()})
    assert share["smooth"][-1] < 0.5 * share["rough"][-1]
    uniform = np.where(disk, 0.5, 0.0)
    assert noise_level_stds(uniform, bandpass, structure, 4, whole) is whole
