"""pysteps' STEPS ensemble as evaluation runs it: pysteps called directly on the upscaled
field gives the same members; the same seed gives the same members in any process, another
seed others; members differ from each other; scored on the test grid, the ensemble's mean is
scored as any nowcast and its members as an ensemble."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from nextframe.domains.rain import ensemble, nowcast
from nextframe.domains.rain.ensemble_scores import EnsembleScores
from nextframe.errors import NextframeError
from nextframe.motion import pysteps

from .test_nowcast import mch_window  # noqa: F401  (the fixture)

N_LEADS = 3
SPEC = ensemble.EnsembleSpec(n_members=3, pixel_km=1.0, timestep_minutes=5.0, network="mch")


def test_block_means_skip_no_data_and_repeat_back_onto_the_grid():
    field = np.arange(25, dtype=float).reshape(5, 5)
    field[:2, :2] = np.nan  # a whole block without data
    field[2, 2] = np.nan  # one pixel of a block
    coarse = ensemble.block_mean(field, 2)
    assert coarse.shape == (3, 3)
    assert np.isnan(coarse[0, 0])
    assert coarse[1, 1] == pytest.approx(np.mean([13, 17, 18]))
    assert coarse[2, 2] == 24  # the edge block: its one pixel inside the grid
    back = ensemble.repeated(coarse, 2, 5, 5)
    assert back.shape == (5, 5) and back[3, 4] == coarse[1, 2]


def test_members_equal_pysteps_steps_on_the_field_upscaled_to_2_km(mch_window):  # noqa: F811
    context, _ = mch_window
    members = ensemble.steps_ensemble(context, N_LEADS, SPEC, seed=7)
    assert members.shape == (3, N_LEADS, 64, 64)
    ps = pysteps()
    coarse = ensemble.block_mean(context, 2)
    db = ps.utils.transformation.dB_transform(coarse, threshold=0.1, zerovalue=-15.0)[0]
    db[~np.isfinite(db)] = -15.0
    velocity = ps.motion.get_method("LK")(db)
    expected_db = ps.nowcasts.get_method("steps")(
        db[-3:],
        velocity,
        N_LEADS,
        n_ens_members=3,
        n_cascade_levels=6,
        precip_thr=-10.0,
        kmperpixel=2.0,
        timestep=5.0,
        noise_method="nonparametric",
        vel_pert_method="bps",
        vel_pert_kwargs=ensemble.LK_VELOCITY_PERTURBATIONS["mch"],
        mask_method="incremental",
        seed=7,
    )
    expected = ps.utils.transformation.dB_transform(expected_db, threshold=-10.0, inverse=True)[0]
    expected[np.isnan(expected)] = 0.0
    expected[:, :, np.isnan(coarse[-1])] = np.nan
    np.testing.assert_allclose(members, expected)


def _members(context: np.ndarray, seed: int) -> np.ndarray:
    return ensemble.steps_ensemble(context, N_LEADS, SPEC, seed)


def test_the_same_seed_gives_the_same_members_in_any_process_and_members_differ(mch_window):  # noqa: F811
    context, _ = mch_window
    here = _members(context, 11)
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        there = pool.submit(_members, context, 11).result()
    np.testing.assert_array_equal(here, there)
    assert not np.allclose(here, _members(context, 12), equal_nan=True)
    last = here[:, -1]
    assert not np.allclose(last[0], last[1], equal_nan=True)
    assert ensemble.window_seed(42, 0, 3) == ensemble.window_seed(42, 0, 3)
    assert ensemble.window_seed(42, 0, 3) != ensemble.window_seed(42, 1, 3)


def test_scored_on_the_test_grid_the_mean_is_a_nowcast_and_the_members_an_ensemble(mch_window):  # noqa: F811
    context, truth = mch_window
    spec = nowcast.ScoreSpec((1.0, 5.0), (1.0,), (4.0,), 1.0, 5.0)
    probabilistic, deterministic = ensemble.scored_steps(context, truth, spec, SPEC, seed=5)
    members = ensemble.repeated(_members(context, 5), 2, 128, 128)
    members[..., np.isnan(context[-1])] = np.nan
    expected = nowcast.RainScores(spec, N_LEADS)
    expected.add(members.mean(axis=0), truth)
    assert deterministic.per_lead() == expected.per_lead()
    by_hand = EnsembleScores(3, N_LEADS, (1.0, 5.0))
    for lead in range(N_LEADS):
        by_hand.accumulate(lead, members[:, lead], truth[lead])
    assert probabilistic.per_lead()[-1]["crps"] == by_hand.per_lead()[-1]["crps"]
    assert len(probabilistic.per_lead()[0]["rankhist"]) == 4
    assert 0 < probabilistic.per_lead()[0]["crps"] < np.nanmean(truth)


def test_one_member_is_no_ensemble(mch_window):  # noqa: F811
    context, _ = mch_window
    spec = ensemble.EnsembleSpec(n_members=1, pixel_km=1.0, timestep_minutes=5.0)
    with pytest.raises(NextframeError, match="2 members or more, got 1"):
        ensemble.steps_ensemble(context, N_LEADS, spec, seed=0)
