"""Closed-loop evaluation of the model and the trivial baselines on the same test sequences."""

from __future__ import annotations

import numpy as np

from nextframe.frames import to_float_frames
from nextframe.metrics import BASELINES, METRIC_NAMES, per_step, summarize
from nextframe.model import NextFramePredictor
from nextframe.rollout import predict_future


def evaluate(
    model: NextFramePredictor,
    test_uint8: np.ndarray,
    n_context: int,
    horizon: int,
    batch_size: int,
) -> tuple[dict, list[dict[str, float]]]:
    """Overall metrics nested for `dvc exp show` and one row per horizon step for `dvc plots`."""
    context_uint8 = test_uint8[:, :n_context]
    truth = to_float_frames(test_uint8[:, n_context : n_context + horizon])
    context = to_float_frames(context_uint8)
    predictions = {"model": predict_future(model, context, horizon, batch_size)}
    for name, baseline in BASELINES.items():
        predictions[name] = baseline(context, horizon)

    steps = {name: per_step(pred, truth) for name, pred in predictions.items()}
    overall = {name: summarize(values) for name, values in steps.items()}
    for name in overall:
        for metric in METRIC_NAMES:
            overall[name][f"{metric}_step_1"] = float(steps[name][metric][0])
            overall[name][f"{metric}_step_{horizon}"] = float(steps[name][metric][-1])
    report = {
        "model": overall.pop("model"),
        "baselines": overall,
        "n_sequences": len(test_uint8),
        "n_context": n_context,
        "horizon": horizon,
    }
    rows = [
        {
            "step": step + 1,
            **{
                f"{name}_{metric}": float(steps[name][metric][step])
                for name in steps
                for metric in METRIC_NAMES
            },
        }
        for step in range(horizon)
    ]
    return report, rows
