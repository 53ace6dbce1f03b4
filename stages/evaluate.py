"""DVC stage `evaluate`: closed-loop metrics of the model and baselines on the test split."""

from __future__ import annotations

import json

from nextframe import cli


def main() -> None:
    args = cli.stage_args(
        __doc__,
        model="models/model.keras",
        test="data/processed/test.npy",
        run_info="models/mlflow_run.json",
        metrics="metrics/eval.json",
        per_step="metrics/eval_per_step.csv",
    )

    from nextframe.params import load_params

    params = load_params(args.params)

    from nextframe.evaluation import evaluate
    from nextframe.io import load_npy, remove_outputs, write_csv, write_json
    from nextframe.model import load_predictor
    from nextframe.ops.tracking import crown_if_best, log_evaluation

    remove_outputs(args.metrics, args.per_step)
    model = load_predictor(args.model)
    test_uint8 = load_npy(args.test)
    report, rows = evaluate(
        model, test_uint8, params.data.n_context, params.data.horizon, params.evaluate.batch_size
    )
    run_id = json.loads(args.run_info.read_text())["run_id"]
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
