import math

import numpy as np
import pytest

from nextframe.errors import NextframeError
from nextframe.metrics import (
    BASELINES,
    PSNR_CAP_DB,
    copy_last_baseline,
    mean_context_baseline,
    per_step,
    summarize,
    zeros_baseline,
)

SIDE = 8  # the smallest convenient frame for SSIM's 7x7 window


def one_pixel_error() -> tuple[np.ndarray, np.ndarray]:
    """N=1, T=2: step 0 is off by 0.5 on one pixel, step 1 is exact."""
    true = np.zeros((1, 2, SIDE, SIDE), dtype=np.float32)
    pred = true.copy()
    pred[0, 0, 3, 4] = 0.5
    return pred, true


def test_one_pixel_error_gives_hand_computed_values():
    pred, true = one_pixel_error()
    values = per_step(pred, true)
    np.testing.assert_allclose(values["mse"], [0.25, 0.0])
    np.testing.assert_allclose(values["mae"], [0.5, 0.0])
    np.testing.assert_allclose(values["psnr"], [-10 * math.log10(0.25 / SIDE**2), PSNR_CAP_DB])
    assert values["ssim"][0] < 1.0
    assert values["ssim"][1] == pytest.approx(1.0)


def test_identical_frames_score_perfectly():
    frames = np.random.default_rng(0).uniform(size=(2, 3, SIDE, SIDE))
    values = per_step(frames, frames.copy())
    np.testing.assert_array_equal(values["mse"], 0.0)
    np.testing.assert_array_equal(values["mae"], 0.0)
    np.testing.assert_allclose(values["ssim"], 1.0)
    np.testing.assert_array_equal(values["psnr"], PSNR_CAP_DB)


def test_ssim_uses_data_range_one():
    # Constant frames a=0.02 vs b=0: SSIM = C1 / (a^2 + C1) with C1 = (0.01 * data_range)^2,
    # which is 0.2 for data_range 1 and 0.5 for the range 2 older scikit-image guessed.
    true = np.zeros((1, 1, SIDE, SIDE))
    pred = np.full_like(true, 0.02)
    assert per_step(pred, true)["ssim"][0] == pytest.approx(0.2, abs=1e-6)


def test_clipping_applies_to_ssim_and_psnr_but_not_mse_mae():
    true = np.ones((1, 1, SIDE, SIDE))
    pred = np.full_like(true, 1.5)
    values = per_step(pred, true)
    assert values["mse"][0] == pytest.approx(SIDE**2 * 0.25)
    assert values["mae"][0] == pytest.approx(SIDE**2 * 0.5)
    assert values["ssim"][0] == pytest.approx(1.0)
    assert values["psnr"][0] == PSNR_CAP_DB


def test_values_are_averaged_over_sequences():
    pred, true = one_pixel_error()
    pred_pair = np.concatenate([pred, true])  # the second sequence is predicted exactly
    true_pair = np.concatenate([true, true])
    np.testing.assert_allclose(per_step(pred_pair, true_pair)["mse"], [0.125, 0.0])


def test_chunked_accumulation_matches_direct_computation():
    rng = np.random.default_rng(1)
    true = rng.uniform(size=(37, 2, SIDE, SIDE)).astype(np.float32)
    pred = rng.uniform(size=true.shape).astype(np.float32)
    values = per_step(pred, true)
    error = pred.astype(np.float64) - true
    np.testing.assert_allclose(values["mse"], (error**2).sum(axis=(2, 3)).mean(axis=0))
    np.testing.assert_allclose(values["mae"], np.abs(error).sum(axis=(2, 3)).mean(axis=0))


def test_singleton_channel_axis_gives_the_same_values():
    rng = np.random.default_rng(2)
    true = rng.uniform(size=(2, 3, SIDE, SIDE))
    pred = rng.uniform(-0.2, 1.2, size=true.shape)
    plain = per_step(pred, true)
    with_channel = per_step(pred[..., None], true[..., None])
    for name, values in plain.items():
        np.testing.assert_allclose(with_channel[name], values)


def test_color_frames_sum_over_channels():
    true = np.zeros((1, 1, SIDE, SIDE, 3))
    pred = true.copy()
    pred[0, 0, 0, 0, :] = 0.5
    values = per_step(pred, true)
    assert values["mse"][0] == pytest.approx(3 * 0.25)
    assert values["ssim"][0] < 1.0


def test_summarize_is_the_mean_over_steps_as_python_floats():
    pred, true = one_pixel_error()
    overall = summarize(per_step(pred, true))
    assert set(overall) == {"mse", "mae", "ssim", "psnr"}
    assert all(type(value) is float for value in overall.values())
    assert overall["mse"] == pytest.approx(0.125)
    assert overall["mae"] == pytest.approx(0.25)


def test_bad_inputs_raise_a_readable_error():
    frames = np.zeros((1, 2, SIDE, SIDE))
    with pytest.raises(NextframeError, match="differs"):
        per_step(frames, frames[:, :1])
    with pytest.raises(NextframeError, match="7x7"):
        per_step(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 4, 4)))


@pytest.fixture
def context() -> np.ndarray:
    return np.random.default_rng(3).uniform(size=(2, 3, 4, 4)).astype(np.float32)


def test_zeros_baseline(context):
    out = zeros_baseline(context, 5)
    assert out.shape == (2, 5, 4, 4)
    assert out.dtype == np.float32
    assert not out.any()


def test_copy_last_baseline_repeats_the_last_context_frame(context):
    out = copy_last_baseline(context, 5)
    assert out.shape == (2, 5, 4, 4)
    assert out.dtype == np.float32
    for step in range(5):
        np.testing.assert_array_equal(out[:, step], context[:, -1])


def test_mean_context_baseline_repeats_the_mean_frame(context):
    out = mean_context_baseline(context, 5)
    assert out.shape == (2, 5, 4, 4)
    assert out.dtype == np.float32
    for step in range(5):
        np.testing.assert_allclose(out[:, step], context.mean(axis=1), rtol=1e-6)


def test_baselines_keep_a_channel_axis_and_reject_a_bad_horizon(context):
    assert set(BASELINES) == {"zeros", "copy_last", "mean_context", "extrapolation"}
    for baseline in BASELINES.values():
        assert baseline(context[..., None], 2).shape == (2, 2, 4, 4, 1)
        with pytest.raises(NextframeError, match="horizon"):
            baseline(context, 0)
