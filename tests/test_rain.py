"""Rain rates as the model's values and back, the masked radar loss on a hand-checked case,
and a radar model's nowcast over a whole domain of any size, NaN outside it."""

from __future__ import annotations

import numpy as np
import pytest
from keras import ops

from nextframe.domains.rain.forecast import padded_shape, predict_rain
from nextframe.domains.rain.loss import fractions_loss, masked_mean, pixel_losses
from nextframe.domains.rain.scale import (
    NO_DATA,
    RainScale,
    decode_unit,
    rain_codes_to_frames,
    rain_valid,
)
from nextframe.frames import FrameFormat
from nextframe.model import build_model, load_predictor, save_predictor
from nextframe.params import parse_params

from .helpers import RADAR_TINY, tiny_params

SCALE = RainScale()  # 0.1 mm/h threshold, -15 dBR dry, 100 mm/h the top


def test_rain_rates_round_trip_through_the_codes_within_a_code_step():
    rain = np.array([0.0, 0.05, 0.1, 1.0, 5.0, 10.0, 60.0, 100.0, 250.0, np.nan])
    back = SCALE.decode_mmh(SCALE.encode(rain))
    assert np.isnan(back[-1]) and SCALE.encode(rain)[-1] == NO_DATA
    assert back[0] == 0.0 and back[1] == 0.0  # below the threshold: dry
    np.testing.assert_allclose(back[2:8], rain[2:8], rtol=0.04)  # 0.14 dB a code step
    assert back[8] == pytest.approx(100.0, rel=1e-6)  # heavier rain clips at the top


def test_the_scale_is_dbr_as_pysteps_transforms_it():
    # 1 mm/h is 0 dBR: (0 - -15) / (20 - -15) of the way up; the threshold's value reads dry
    # just below it.
    assert float(SCALE.to_unit(np.float64(1.0))) == pytest.approx(15 / 35)
    just_below = SCALE.threshold_unit - 1e-4
    assert float(SCALE.to_mmh(np.float64(just_below))) == 0.0
    assert float(SCALE.to_mmh(np.float64(SCALE.threshold_unit))) == pytest.approx(0.1, rel=1e-5)


def test_no_data_codes_are_dry_inputs_and_masked_targets():
    codes = np.array([[0, 127, 254, NO_DATA]], np.uint8).reshape(1, 1, 2, 2, 1)
    values = ops.convert_to_numpy(rain_codes_to_frames(codes)).ravel()
    np.testing.assert_allclose(values, [0.0, 127 / 254, 1.0, 0.0], rtol=1e-6)
    assert ops.convert_to_numpy(rain_valid(codes)).ravel().tolist() == [1, 1, 1, 0]
    assert np.isnan(decode_unit(codes).ravel()[-1])


def test_the_masked_loss_skips_no_data_pixels_hand_checked():
    targets = np.array([0.0, 0.6, 1.0, 0.2], np.float32).reshape(1, 1, 2, 2, 1)
    predictions = np.array([0.1, 0.4, 1.0, 0.9], np.float32).reshape(1, 1, 2, 2, 1)
    valid = np.array([1, 1, 1, 0], np.float32).reshape(1, 1, 2, 2, 1)
    # MSE over the three pixels with data: (0.01 + 0.04 + 0) / 3; the 4th (0.49) is skipped.
    mse = masked_mean(pixel_losses("mse", targets, predictions), valid)
    assert float(mse) == pytest.approx(0.05 / 3, rel=1e-5)
    # Balanced: a weight by the observed rain: 0 (dry: 1), 0.6 (4 mm/h: 2), 1.0 (100: 30).
    unit_of = {mmh: float(SCALE.to_unit(np.float64(mmh))) for mmh in (2.0, 5.0)}
    assert unit_of[2.0] < 0.6 < unit_of[5.0]
    balanced = masked_mean(pixel_losses("balanced", targets, predictions, SCALE), valid)
    expected = (1 * (0.1 + 0.01) + 2 * (0.2 + 0.04) + 30 * 0.0) / 3
    assert float(balanced) == pytest.approx(expected, rel=1e-5)
    nothing = masked_mean(pixel_losses("mse", targets, predictions), valid * 0)
    assert float(nothing) == 0.0  # a crop with no data adds nothing, no NaN


def test_balanced_max_charges_rain_added_what_it_charges_rain_missed():
    heavy = float(SCALE.to_unit(np.float64(40.0)))  # weight 30
    dry, added, missed = (np.array(v, np.float32).reshape(1, 1, 1, 1, 1) for v in (0, heavy, 0))
    one = np.ones((1, 1, 1, 1, 1), np.float32)

    def cost(kind, targets, predictions):
        return float(masked_mean(pixel_losses(kind, targets, predictions, SCALE), one))

    # Heavy rain predicted where it stayed dry, and the same heavy rain missed.
    assert cost("balanced", dry, added) * 30 == pytest.approx(cost("balanced", added, missed))
    assert cost("balanced_max", dry, added) == pytest.approx(cost("balanced_max", added, missed))
    assert cost("balanced_max", added, missed) == pytest.approx(cost("balanced", added, missed))


def test_the_fractions_loss_charges_deleted_rain_not_rain_moved_within_a_block():
    """`balanced+fss`'s term: a cell moved 4 px inside its 8 px block costs nothing, the same
    cell deleted does, where the squared error charges moving it twice what deleting it
    costs (the double penalty that teaches a model to delete what it cannot place)."""
    rain = float(SCALE.to_unit(np.float64(10.0)))  # above both thresholds
    truth = np.zeros((1, 1, 32, 32, 1), np.float32)
    truth[0, 0, 4:8, 0:4] = rain
    moved = np.roll(truth, 4, axis=3)  # columns 4:8, the same 8 px block
    deleted = np.zeros_like(truth)
    valid = np.ones_like(truth)

    def fractions(prediction, valid=valid):
        return float(fractions_loss(truth, prediction, valid, SCALE))

    def mse(prediction):
        return float(masked_mean(pixel_losses("mse", truth, prediction), valid))

    assert fractions(truth) == pytest.approx(0.0, abs=1e-6)
    assert fractions(moved) == pytest.approx(0.0, abs=1e-6)
    assert fractions(deleted) > 1e-3
    assert mse(moved) == pytest.approx(2 * mse(deleted))
    # Pixels without data weigh nothing: rain predicted there costs nothing.
    inside = valid.copy()
    inside[0, 0, :, 16:] = 0
    spilled = truth.copy()
    spilled[0, 0, :, 20:] = rain
    assert fractions(spilled, inside) == pytest.approx(0.0, abs=1e-6)


def test_padded_shape_rounds_each_side_up_to_the_patch():
    assert padded_shape(640, 710, 4) == (640, 712)
    assert padded_shape(64, 64, 4) == (64, 64)


@pytest.fixture(scope="module")
def radar_model():
    params = parse_params(tiny_params(RADAR_TINY))
    assert params.data.is_radar
    return build_model(params.model, params.data.horizon, FrameFormat.of(params.data))


def test_a_radar_model_nowcasts_any_domain_in_mm_per_hour_nan_outside(radar_model, tmp_path):
    rng = np.random.default_rng(0)
    context = rng.gamma(0.5, 2.0, (2, 4, 50, 70)).astype(np.float32)  # not a multiple of 4
    context[:, :, :10, :] = np.nan  # outside the radar's domain
    context[1, -1, 20:25, 30:35] = np.nan  # and a hole in the last frame of one clip
    nowcast = predict_rain(radar_model, context, 3)
    assert nowcast.shape == (2, 3, 50, 70) and nowcast.dtype == np.float32
    outside = np.isnan(context[:, -1])
    assert np.isnan(nowcast).sum() == 3 * outside.sum()
    assert np.array_equal(np.isnan(nowcast), np.broadcast_to(outside[:, None], nowcast.shape))
    inside = nowcast[~np.isnan(nowcast)]
    assert inside.min() >= 0.0 and inside.max() <= SCALE.max_mmh
    # One model, any size: the whole domain and a crop of the training size alike, and the
    # saved model loads and predicts the same (no layer is tied to a size).
    path = tmp_path / "radar.keras"
    save_predictor(radar_model, path)
    loaded = load_predictor(path)
    assert loaded.frames.rain == SCALE
    np.testing.assert_allclose(predict_rain(loaded, context, 3), nowcast, rtol=1e-5, atol=1e-6)
    assert predict_rain(loaded, context[:, :, :32, :32], 2).shape == (2, 2, 32, 32)


def test_the_training_loss_with_fractions_is_the_balanced_loss_and_a_finite_term(radar_model):
    """What `train.loss: balanced+fss` trains on, on a batch of rain codes with no-data
    pixels, the predictions one step behind the truth (so the fractions term is not 0)."""
    from nextframe.domains import domain_of

    rng = np.random.default_rng(1)
    batch = rng.integers(0, 255, (2, 4, 32, 32, 1), dtype=np.uint8)  # 255 is no data
    predictions = rain_codes_to_frames(batch)[:, :-1]  # frames 0..2 for targets 1..3
    domain = domain_of(radar_model.frames)
    balanced = float(domain.loss("balanced", batch, predictions, radar_model.frames))
    with_fss = float(domain.loss("balanced+fss", batch, predictions, radar_model.frames))
    assert np.isfinite(with_fss) and with_fss > balanced > 0


def test_radar_params_refuse_a_size_bound_normalization():
    from nextframe.errors import NextframeError

    edits = {**RADAR_TINY, "model": {"normalization": "layer"}}
    with pytest.raises(NextframeError, match=r"model.normalization layer .* ties the model"):
        parse_params(tiny_params(edits))
