"""The video domain's evaluation: closed-loop MSE, MAE, SSIM and PSNR per horizon step, the
model beside the trivial baselines and optical flow, read and scored a batch at a time; the
power spectra of the truth and of each forecast at the first and last step (blur shows as lost
power at small wavelengths), a diagram for `dvc plots`."""

from __future__ import annotations

from nextframe.frames import to_unit
from nextframe.metrics import BASELINES, METRIC_NAMES, PerStep, summarize
from nextframe.model import NextFramePredictor
from nextframe.rollout import predict_future
from nextframe.spectra import Spectra


def evaluate_windows(
    model: NextFramePredictor,
    test_uint8,
    n_context: int,
    horizon: int,
    batch_size: int,
    with_spectra: bool = True,
    with_baselines: bool = True,
) -> tuple[dict, list[dict[str, float]]]:
    """Overall metrics nested for `dvc exp show` and one row per horizon step for `dvc plots`,
    the power spectra as the report's diagram, the baselines beside the model (a score of each
    epoch needs neither: without `with_spectra` and `with_baselines`, the model alone, and
    optical flow is not run on every window each epoch). `test_uint8`: windows (N, T, H, W,
    C), an array or a `WindowFile`."""
    baselines = BASELINES if with_baselines else {}
    scores = {name: PerStep() for name in ("model", *baselines)}
    spectra = Spectra(test_uint8.shape[2:4], 1.0, {"step_1": 0, f"step_{horizon}": horizon - 1})
    for start in range(0, len(test_uint8), batch_size):
        windows = to_unit(test_uint8[start : start + batch_size])
        context, truth = windows[:, :n_context], windows[:, n_context : n_context + horizon]
        forecasts = {"model": predict_future(model, context, horizon, batch_size)}
        forecasts.update({name: baseline(context, horizon) for name, baseline in baselines.items()})
        for name, forecast in forecasts.items():
            scores[name].add(forecast, truth)
        for name, forecast in {"observed": truth, **forecasts}.items():
            for each in forecast if with_spectra else ():
                spectra.add(name, each)

    steps = {name: per_step.means() for name, per_step in scores.items()}
    overall = {name: summarize(values) for name, values in steps.items()}
    for name in overall:
        for metric in METRIC_NAMES:
            overall[name][f"{metric}_step_1"] = float(steps[name][metric][0])
            overall[name][f"{metric}_step_{horizon}"] = float(steps[name][metric][-1])
    report = {
        "model": overall.pop("model"),
        "baselines": overall,
        "n_windows": len(test_uint8),
        "n_context": n_context,
        "horizon": horizon,
        "diagrams": {"spectra": spectra.rows()} if with_spectra else {},
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


def evaluate(
    model, windows, params, manifest, test_archives=None
) -> tuple[dict, list[dict[str, float]]]:
    """The test split's report and per-step rows (the evaluate stage's); a video source has
    no more archives to score (`test_archives`)."""
    data = params.data
    return evaluate_windows(
        model, windows, data.n_context, data.horizon, params.evaluate.batch_size
    )


def summary(report: dict) -> str:
    model_mse, zeros_mse = report["model"]["mse"], report["baselines"]["zeros"]["mse"]
    return f"closed-loop MSE per frame {model_mse:.2f} (all-zero baseline {zeros_mse:.2f})"
