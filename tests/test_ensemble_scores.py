"""The probabilistic scores of a rain ensemble against pysteps called directly on hand-made
ensembles: a perfect ensemble's rank histogram is flat, a one-member ensemble's CRPS is its
MAE, no-data pixels are skipped, and accumulators merged across processes equal one."""

from __future__ import annotations

import numpy as np
import pytest

from nextframe.domains.rain.ensemble_scores import EnsembleScores
from nextframe.errors import NextframeError
from nextframe.motion import pysteps


def _rain(rng: np.random.Generator, shape) -> np.ndarray:
    """Rain-like values: two thirds dry, the rest gamma-distributed mm/h."""
    return np.where(rng.random(shape) < 0.66, 0.0, rng.gamma(0.8, 3.0, shape))


def test_a_perfect_ensembles_rank_histogram_is_flat_and_its_spread_matches_its_error():
    """Members and truth drawn alike: the truth is as likely at any rank."""
    rng = np.random.default_rng(0)
    scores = EnsembleScores(n_members=7, n_leads=1, thresholds_mmh=[1.0])
    for _ in range(4):
        scores.accumulate(0, _rain(rng, (7, 64, 64)), _rain(rng, (64, 64)))
    (row,) = scores.per_lead()
    assert len(row["rankhist"]) == 8 and sum(row["rankhist"]) == pytest.approx(1.0)
    np.testing.assert_allclose(row["rankhist"], 1 / 8, atol=0.01)
    # The truth is one more draw: its error from the mean is the spread times sqrt(1 + 1/M).
    assert row["rmse_of_mean"] == pytest.approx(row["spread"] * np.sqrt(1 + 1 / 7), rel=0.05)
    assert 0.45 < row["roc_area_1"] < 0.55  # members know nothing of the truth: no skill
    reliability = row["reliability_1"]
    assert len(reliability["forecast"]) == len(reliability["observed"]) == 10


def test_a_one_member_ensembles_crps_is_its_mean_absolute_error():
    rng = np.random.default_rng(1)
    forecast, observed = _rain(rng, (1, 32, 32)), _rain(rng, (32, 32))
    scores = EnsembleScores(n_members=1, n_leads=1, thresholds_mmh=[1.0])
    scores.accumulate(0, forecast, observed)
    assert scores.per_lead()[0]["crps"] == pytest.approx(np.abs(forecast[0] - observed).mean())


def test_scores_equal_pysteps_on_the_pixels_with_data_and_skip_the_rest():
    rng = np.random.default_rng(2)
    members, observed = _rain(rng, (5, 40, 40)), _rain(rng, (40, 40))
    observed[:10] = np.nan  # outside the radar's domain
    members[2, :, :5] = np.nan  # one member's no data
    scores = EnsembleScores(n_members=5, n_leads=2, thresholds_mmh=[1.0, 5.0])
    scores.accumulate(1, members, observed)
    row = scores.per_lead()[1]
    valid = np.isfinite(observed) & np.isfinite(members).all(axis=0)
    probscores = pysteps().verification.probscores
    assert row["crps"] == pytest.approx(probscores.CRPS(members[:, valid], observed[valid]))
    probability = (members[:, valid] >= 5.0).mean(axis=0)
    roc = probscores.ROC_curve_init(5.0)
    probscores.ROC_curve_accum(roc, probability, observed[valid])
    assert row["roc_area_5"] == pytest.approx(probscores.ROC_curve_compute(roc, True)[2])
    assert np.isnan(scores.per_lead()[0]["crps"])  # lead 0 was never scored


def test_accumulators_merged_across_processes_equal_one_accumulator():
    rng = np.random.default_rng(3)
    windows = [(_rain(rng, (4, 24, 24)), _rain(rng, (24, 24))) for _ in range(4)]
    one = EnsembleScores(4, 1, [1.0])
    halves = [EnsembleScores(4, 1, [1.0]), EnsembleScores(4, 1, [1.0])]
    for i, (members, observed) in enumerate(windows):
        one.accumulate(0, members, observed)
        halves[i % 2].accumulate(0, members, observed)
    merged = halves[0].merge(halves[1])
    expected, got = one.per_lead()[0], merged.per_lead()[0]
    for key in ("crps", "spread", "rmse_of_mean", "roc_area_1"):
        assert got[key] == pytest.approx(expected[key], rel=1e-12)
    np.testing.assert_allclose(got["rankhist"], expected["rankhist"])  # ties drawn alike
    assert got["reliability_1"]["count"] == expected["reliability_1"]["count"]
    assert halves[0].per_lead()[0]["crps"] != got["crps"]  # a new object; the halves stay


def test_members_of_another_shape_are_one_line():
    scores = EnsembleScores(3, 1, [1.0])
    with pytest.raises(NextframeError, match=r"expected members of shape \(3, 8, 8\)"):
        scores.accumulate(0, np.zeros((2, 8, 8)), np.zeros((8, 8)))
    with pytest.raises(NextframeError, match="only accumulators of one shape merge"):
        scores.merge(EnsembleScores(2, 1, [1.0]))
