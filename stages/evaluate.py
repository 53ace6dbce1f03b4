"""DVC stage `evaluate`: closed-loop metrics of the model and baselines on the test split; the
registry's champion moves to the model if it is better. On radar: pysteps' scores per lead
time on the held-out events' whole domain, the model beside pysteps' own nowcasts."""

from __future__ import annotations

from nextframe import cli
from nextframe.data.windows import open_radar_windows, open_windows
from nextframe.io import load_json, remove_outputs, require_file
from nextframe.ops.tracking import run_id_of
from nextframe.params import load_params


def main() -> None:
    args = cli.stage_args(
        __doc__, "params", "model", "test", "manifest", "run_info", "metrics", "per_step"
    )
    params = load_params(args.params)
    data = params.data
    if data.is_radar:
        test_windows = open_radar_windows(args.test, data.n_frames)
        manifest = load_json(args.manifest)
    else:
        test_windows = open_windows(args.test, data.n_frames, data.frame_size, data.channels)
    run_id = run_id_of(args.run_info)
    require_file(args.model, "model file")
    remove_outputs(args.metrics, args.per_step)
    if data.is_radar:
        evaluate_radar_model(args, params, test_windows, manifest, run_id)
        return

    from nextframe.evaluation import evaluate
    from nextframe.io import write_csv, write_json
    from nextframe.model import load_predictor
    from nextframe.ops.registry import crown_if_best
    from nextframe.ops.tracking import log_evaluation

    model = load_predictor(args.model, frames_of=test_windows)
    report, rows = evaluate(
        model, test_windows, data.n_context, data.horizon, params.evaluate.batch_size
    )
    log_evaluation(run_id, report, rows)
    decision = crown_if_best(run_id, report["model"]["mse"])
    write_json(args.metrics, report)
    write_csv(args.per_step, rows, lambda value: f"{value:.6g}")
    model_mse, zeros_mse = report["model"]["mse"], report["baselines"]["zeros"]["mse"]
    print(
        f"evaluate: closed-loop MSE per frame {model_mse:.2f} (all-zero baseline {zeros_mse:.2f})"
    )
    print(f"evaluate: {decision.describe()}")


def evaluate_radar_model(args, params, test_windows, manifest, run_id) -> None:
    """The radar source: pysteps' scores per lead time, the model beside pysteps' nowcasts."""
    from nextframe.io import write_csv, write_json
    from nextframe.model import load_predictor
    from nextframe.ops.registry import RADAR_ALIAS, crown_if_best
    from nextframe.ops.tracking import log_evaluation
    from nextframe.radar_evaluation import evaluate_radar, score_spec

    data, radar = params.data, manifest["radar"]
    model = load_predictor(args.model, frames_of=test_windows)
    spec = score_spec(params.evaluate, radar["grid"]["pixel_km"], radar["timestep_minutes"])
    report, rows = evaluate_radar(
        model, test_windows, data.n_context, data.horizon, spec, params.evaluate.nowcasts
    )
    report["test_events"] = radar["events"]["test"]
    log_evaluation(run_id, report, rows, step_key="lead_minutes")
    # Radar models are judged among themselves by the rain rate's mean squared error.
    report["model"]["mse"] = report["model"]["rmse"] ** 2
    decision = crown_if_best(run_id, report["model"]["mse"], RADAR_ALIAS)
    write_json(args.metrics, report)
    write_csv(args.per_step, rows, lambda value: f"{value:.6g}")
    lines = []
    for name, scores in {"model": report["model"], **report["baselines"]}.items():
        at = [scores.get(f"at_{m}min", {}).get("csi_1") for m in (5, 30, 60)]
        shown = " / ".join("-" if v is None else f"{v:.2f}" for v in at)
        lines.append(f"{name} {shown}")
    print(f"evaluate: CSI >= 1 mm/h at 5 / 30 / 60 min: {'; '.join(lines)}")
    print(f"evaluate: {decision.describe()}")


if __name__ == "__main__":
    cli.run(main)
