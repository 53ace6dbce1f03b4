from types import SimpleNamespace

import keras
import numpy as np
import pytest

from nextframe.domains.video.evaluation import evaluate_windows as evaluate
from nextframe.frames import FrameFormat, to_unit
from nextframe.metrics import METRIC_NAMES, per_step, summarize
from nextframe.model import build_model
from nextframe.params import parse_params
from nextframe.rollout import predict_future

N_CONTEXT, HORIZON = 3, 2
FRAME_PIXELS = 64 * 64


@pytest.fixture
def dark_then_white() -> np.ndarray:
    """Black context frames, then white frames to predict, then one frame nobody should read."""
    sequences = np.zeros((3, N_CONTEXT + HORIZON + 1, 64, 64, 1), dtype=np.uint8)
    sequences[:, N_CONTEXT : N_CONTEXT + HORIZON] = 255
    return sequences


@pytest.fixture
def report_and_rows(tiny_params, dark_then_white):
    keras.utils.set_random_seed(0)
    model = build_model(parse_params(tiny_params).model, HORIZON, FrameFormat(64, 1))
    report, rows = evaluate(model, dark_then_white, N_CONTEXT, HORIZON, batch_size=2)
    return model, report, rows


def test_baselines_score_the_frames_after_the_context(report_and_rows):
    """Every baseline predicts black here, and the truth is white: a full frame of error."""
    _, report, _ = report_and_rows
    assert set(report["baselines"]) == {"zeros", "copy_last", "mean_context", "extrapolation"}
    for scores in report["baselines"].values():
        assert scores["mse"] == pytest.approx(FRAME_PIXELS)
        assert scores["mae"] == pytest.approx(FRAME_PIXELS)
        assert scores["mse_step_1"] == scores[f"mse_step_{HORIZON}"] == pytest.approx(FRAME_PIXELS)
    assert (report["n_windows"], report["n_context"], report["horizon"]) == (3, 2 + 1, 2)


def test_model_is_scored_on_its_closed_loop_rollout(report_and_rows, dark_then_white):
    model, report, _ = report_and_rows
    context = to_unit(dark_then_white[:, :N_CONTEXT])
    truth = to_unit(dark_then_white[:, N_CONTEXT : N_CONTEXT + HORIZON])
    expected = summarize(per_step(predict_future(model, context, HORIZON), truth))
    for metric in METRIC_NAMES:
        assert report["model"][metric] == pytest.approx(expected[metric])


def test_one_row_per_horizon_step_for_dvc_plots(report_and_rows):
    _, report, rows = report_and_rows
    assert [row["step"] for row in rows] == [1, 2]
    assert {"model_mse", "zeros_ssim", "copy_last_psnr", "mean_context_mae"} <= set(rows[0])
    assert np.mean([row["model_mse"] for row in rows]) == pytest.approx(report["model"]["mse"])
    assert rows[0]["model_mse"] == pytest.approx(report["model"]["mse_step_1"])


def test_a_trials_epoch_score_is_evaluates_model_mse_without_the_baselines(
    report_and_rows, dark_then_white, monkeypatch
):
    """The score an Optuna trial reports each epoch (`validation_score`) is the evaluate
    stage's closed-loop MSE of the model, computed without running a baseline (optical flow
    on every window, each epoch, for a figure nobody reads)."""
    from nextframe.domains import get_method

    model, report, _ = report_and_rows
    monkeypatch.setattr(
        "nextframe.domains.video.evaluation.BASELINES",
        {"extrapolation": lambda *_: pytest.fail("a baseline ran for a trial's score")},
    )
    params = SimpleNamespace(  # what the score reads of the params
        data=SimpleNamespace(n_context=N_CONTEXT, horizon=HORIZON),
        train=SimpleNamespace(batch_size=2),
    )
    score = get_method("video").validation_score(model, params, dark_then_white)
    assert score({}) == pytest.approx(report["model"]["mse"])
