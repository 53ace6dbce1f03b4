"""DVC stage `evaluate`: closed-loop metrics of the model and baselines on the test split; the
registry's champion moves to the model if it is better."""

from __future__ import annotations

from nextframe import cli
from nextframe.data.windows import open_windows
from nextframe.io import remove_outputs, require_file
from nextframe.ops.tracking import run_id_of
from nextframe.params import load_params


def main() -> None:
    args = cli.stage_args(__doc__, "params", "model", "test", "run_info", "metrics", "per_step")
    params = load_params(args.params)
    data = params.data
    test_windows = open_windows(args.test, data.n_frames, data.frame_size, data.channels)
    run_id = run_id_of(args.run_info)
    require_file(args.model, "model file")
    remove_outputs(args.metrics, args.per_step)

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


if __name__ == "__main__":
    cli.run(main)
