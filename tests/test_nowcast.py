import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from nextframe import motion
from nextframe.domains.rain import nowcast
from nextframe.errors import NextframeError

PYSTEPS_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pysteps-data"
MCH_EVENT = PYSTEPS_DATA / "radar" / "mch" / "20150515"
# A 128x128 crop of the event's first frames with rain (a fifth above 1 mm/h) and the edge of
# the radar domain (a fifth NaN).
CROP = (slice(480, 608), slice(256, 384))
N_IN, N_OUT = 4, 3

NAN = np.nan
# One lead, 4x4 mm/h. Three pixels are masked: rain forecast under a NaN observation twice
# (4 and 6 mm/h, false alarms if counted), a NaN forecast over a dry observation once.
OBSERVED = np.array(
    [
        [2.0, 0.0, 3.0, NAN],
        [0.0, 0.0, 2.0, 0.0],
        [5.0, 0.0, 0.0, 0.0],
        [NAN, 0.0, 0.0, 0.0],
    ]
)
FORECAST = np.array(
    [
        [2.0, 2.0, 0.0, 4.0],
        [0.0, 0.0, 3.0, 0.0],
        [0.0, 0.0, 0.0, NAN],
        [6.0, 0.0, 0.0, 1.5],
    ]
)
HAND_SPEC = nowcast.ScoreSpec(
    thresholds_mmh=(1.0,),
    fss_thresholds_mmh=(1.0,),
    scales_km=(1.0,),
    pixel_km=1.0,
    timestep_minutes=5.0,
)


def scores_of(forecast: np.ndarray, observed: np.ndarray, spec=HAND_SPEC) -> dict[str, float]:
    scores = nowcast.RainScores(spec, n_leads=1)
    scores.add(forecast[None], observed[None])
    return scores.per_lead()[0]


def test_masked_scores_match_hand_computation():
    row = scores_of(FORECAST, OBSERVED)
    # 13 valid pixels; events (> 1 mm/h): hits (0,0), (1,2); misses (0,2), (2,0); false
    # alarms (0,1), (3,3); 7 correct negatives.
    assert row["csi_1"] == pytest.approx(2 / 6)
    assert row["pod_1"] == pytest.approx(2 / 4)
    assert row["far_1"] == pytest.approx(2 / 4)
    hits_by_chance = 4 * 4 / 13
    assert row["ets_1"] == pytest.approx((2 - hits_by_chance) / (6 - hits_by_chance))
    # FSS at one pixel is 2 * hits / (forecast events + observed events), events >= 1 mm/h.
    assert row["fss_1_1km"] == pytest.approx(2 * 2 / (4 + 4))
    # |errors| on the valid pixels: 2, 3, 1, 5, 1.5, the other 8 exact.
    assert row["mae"] == pytest.approx((2 + 3 + 1 + 5 + 1.5) / 13)
    assert row["rmse"] == pytest.approx(math.sqrt((4 + 9 + 1 + 25 + 2.25) / 13))


def test_scores_merged_from_elsewhere_equal_scores_accumulated_here():
    """Evaluation scores pysteps' nowcasts in worker processes and merges them: the same
    figures as one accumulator, a window without a valid pixel at a lead included."""
    rng = np.random.default_rng(3)
    spec = nowcast.ScoreSpec((0.5, 1.0), (1.0,), (1.0, 4.0), 1.0, 5.0)
    windows = [(rng.gamma(0.6, 2.0, (2, 16, 16)), rng.gamma(0.6, 2.0, (2, 16, 16))) for _ in "abc"]
    windows[1][1][0] = NAN  # nothing observed at the first lead of the second window
    together = nowcast.RainScores(spec, n_leads=2)
    merged = nowcast.RainScores(spec, n_leads=2)
    for forecast, observed in windows:
        together.add(forecast, observed)
        one = nowcast.RainScores(spec, n_leads=2)
        one.add(forecast, observed)
        merged.merge(one)
    for row_merged, row_together in zip(merged.per_lead(), together.per_lead(), strict=True):
        assert row_merged == pytest.approx(row_together, rel=1e-12)


def test_values_under_the_mask_change_no_score():
    masked = ~(np.isfinite(FORECAST) & np.isfinite(OBSERVED))
    rng = np.random.default_rng(0)
    for _ in range(3):
        forecast, observed = FORECAST.copy(), OBSERVED.copy()
        forecast[masked] = rng.uniform(0, 50, masked.sum())
        observed[masked] = rng.uniform(0, 50, masked.sum())
        forecast[np.isnan(FORECAST)] = NAN  # each masked pixel stays NaN on its side
        observed[np.isnan(OBSERVED)] = NAN
        assert scores_of(forecast, observed) == scores_of(FORECAST, OBSERVED)


def test_masked_fss_treats_no_data_as_dry_on_both_sides():
    spec = nowcast.ScoreSpec((1.0,), (1.0, 2.0), (1.0, 3.0), pixel_km=1.0, timestep_minutes=5.0)
    masked = ~(np.isfinite(FORECAST) & np.isfinite(OBSERVED))
    forecast_dry = np.where(masked, 0.0, FORECAST)
    observed_dry = np.where(masked, 0.0, OBSERVED)
    with_nan = scores_of(FORECAST, OBSERVED, spec)
    dry = scores_of(forecast_dry, observed_dry, spec)
    fss_keys = [key for key in with_nan if key.startswith("fss_")]
    assert fss_keys == ["fss_1_1km", "fss_1_3km", "fss_2_1km", "fss_2_3km"]
    assert {key: with_nan[key] for key in fss_keys} == {key: dry[key] for key in fss_keys}


def test_undefined_scores_are_nan_without_warnings():
    dry = np.zeros((4, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        row = scores_of(dry, dry)
        nothing = scores_of(np.full((4, 4), NAN), dry)
    assert math.isnan(row["csi_1"]) and math.isnan(row["pod_1"]) and math.isnan(row["fss_1_1km"])
    assert row["mae"] == 0.0
    assert math.isnan(nothing["mae"]) and math.isnan(nothing["csi_1"])


def test_per_lead_rows_name_lead_minutes_and_every_score():
    spec = nowcast.ScoreSpec((0.5, 1), (1, 5), (1, 4, 16), pixel_km=2.0, timestep_minutes=5.0)
    scores = nowcast.RainScores(spec, n_leads=3)
    rng = np.random.default_rng(0)
    scores.add(rng.gamma(0.5, 2.0, (2, 3, 16, 16)), rng.gamma(0.5, 2.0, (2, 3, 16, 16)))
    rows = scores.per_lead()
    assert [row["lead_minutes"] for row in rows] == [5.0, 10.0, 15.0]
    assert list(rows[0]) == [
        "lead_minutes",
        *(f"{s}_{t}" for t in ("0.5", "1") for s in ("csi", "pod", "far", "ets")),
        *(f"fss_{t}_{k}km" for t in ("1", "5") for k in ("1", "4", "16")),
        "mae",
        "rmse",
    ]


def test_scores_reject_a_wrong_number_of_leads():
    scores = nowcast.RainScores(HAND_SPEC, n_leads=2)
    with pytest.raises(NextframeError, match="L = 2 leads"):
        scores.add(np.zeros((3, 4, 4)), np.zeros((3, 4, 4)))


@pytest.fixture(scope="module")
def mch_window() -> tuple[np.ndarray, np.ndarray]:
    """(4, 128, 128) context and (3, 128, 128) observations in mm/h, NaN outside the domain."""
    if not MCH_EVENT.is_dir():
        pytest.skip(f"pysteps example data not found at {PYSTEPS_DATA}")
    ps = motion.pysteps()
    frames = []
    for path in sorted(MCH_EVENT.glob("*.gif"))[: N_IN + N_OUT]:
        precip, _, metadata = ps.io.import_mch_gif(path, product="AQC", unit="mm", accutime=5)
        frames.append(ps.utils.conversion.to_rainrate(precip, metadata)[0][CROP])
    window = np.stack(frames)
    return window[:N_IN], window[N_IN:]


def test_radar_baselines_equal_pysteps_called_directly(mch_window):
    context, _ = mch_window
    ps = motion.pysteps()
    db = ps.utils.transformation.dB_transform(context, threshold=0.1, zerovalue=-15.0)[0]
    db[~np.isfinite(db)] = -15.0
    velocity = ps.motion.get_method("LK")(db)
    extrapolated_db = ps.nowcasts.get_method("extrapolation")(db[-1], velocity, N_OUT)
    sprog_db = ps.nowcasts.get_method("sprog")(
        db[-3:], velocity, N_OUT, precip_thr=-10.0, n_cascade_levels=6, ar_order=2
    )
    outside = np.isnan(context[-1])
    expected = {"persistence": np.repeat(context[-1:], N_OUT, axis=0)}
    for name, forecast_db in (("extrapolation", extrapolated_db), ("sprog", sprog_db)):
        mmh = ps.utils.transformation.dB_transform(forecast_db, threshold=-10.0, inverse=True)[0]
        expected[name] = np.where(outside, NAN, np.nan_to_num(mmh))

    got = nowcast.radar_baselines(context, N_OUT)

    assert list(got) == list(nowcast.BASELINE_NAMES)
    for name in nowcast.BASELINE_NAMES:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    np.testing.assert_array_equal(nowcast.extrapolation(context, N_OUT), got["extrapolation"])
    np.testing.assert_array_equal(nowcast.sprog(context, N_OUT), got["sprog"])
    np.testing.assert_array_equal(nowcast.persistence(context, N_OUT), got["persistence"])


def test_radar_baselines_are_nan_exactly_outside_the_domain(mch_window, capsys):
    context, observed = mch_window
    outside = np.isnan(context[-1])
    assert 0 < outside.mean() < 0.5  # the crop has both

    baselines = nowcast.radar_baselines(context, N_OUT)

    assert capsys.readouterr().out == ""  # S-PROG's report is swallowed
    for name, forecast in baselines.items():
        assert forecast.shape == (N_OUT, *context.shape[1:])
        np.testing.assert_array_equal(np.isnan(forecast), np.broadcast_to(outside, forecast.shape))
        assert np.nanmin(forecast) >= 0.0, name
    # Motion helps already at 15 minutes: extrapolation beats persistence on CSI at 1 mm/h.
    spec = nowcast.ScoreSpec((1.0,), (1.0,), (4.0,), pixel_km=1.0, timestep_minutes=5.0)
    csi = {}
    for name, forecast in baselines.items():
        scores = nowcast.RainScores(spec, N_OUT)
        scores.add(forecast, observed)
        csi[name] = scores.per_lead()[-1]["csi_1"]
    assert csi["extrapolation"] > csi["persistence"]


def test_radar_baselines_need_three_context_frames():
    with pytest.raises(NextframeError, match="T >= 3"):
        nowcast.radar_baselines(np.zeros((2, 16, 16)), 3)


def moving_square(channels: int) -> np.ndarray:
    """(1, 12, 48, 48, C): a bright 8x8 square moving 2 px per frame to the right."""
    frames = np.zeros((1, 12, 48, 48, channels), dtype=np.float32)
    for t in range(12):
        frames[0, t, 20:28, 4 + 2 * t : 12 + 2 * t] = 0.9
    return frames


@pytest.mark.parametrize("channels", [1, 3])
def test_extrapolate_frames_follows_a_moving_square(channels):
    frames = moving_square(channels)
    context, future = frames[:, :8], frames[:, 8:]

    predicted = motion.extrapolate_frames(context, horizon=4)

    assert predicted.shape == future.shape and predicted.dtype == np.float32
    assert predicted.min() >= 0.0 and predicted.max() <= 1.0
    copy_last = np.repeat(context[:, -1:], 4, axis=1)
    mse_flow = ((predicted - future) ** 2).mean()
    mse_copy = ((copy_last - future) ** 2).mean()
    assert mse_flow < 0.1 * mse_copy


def test_extrapolate_frames_rejects_a_single_frame():
    with pytest.raises(NextframeError, match="T >= 2"):
        motion.extrapolate_frames(np.zeros((1, 1, 16, 16, 1), dtype=np.float32), 2)
