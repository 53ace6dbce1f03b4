"""DVC stage `evaluate`: the model scored on the test split beside its domain's baselines
(`nextframe.domains`: video frames closed loop, radar nowcasts beside pysteps'); the
registry's alias for that domain moves to the model if it is better. A report's `diagrams`
(radar: power spectra; with an ensemble, rank histograms and reliability diagrams) become a
CSV each in the diagrams folder, for `dvc plots`; the folder is empty where there are none."""

from __future__ import annotations

from nextframe import cli
from nextframe.domains import get_method, get_part
from nextframe.io import load_json, remove_outputs, require_file
from nextframe.ops.tracking import run_id_of
from nextframe.params import load_params


def main() -> None:
    args = cli.stage_args(
        __doc__,
        "params",
        "model",
        "test",
        "test_archives",
        "manifest",
        "run_info",
        "metrics",
        "per_step",
        "diagrams",
    )
    params = load_params(args.params)
    domain = get_method(params.data.domain)
    test_windows = domain.open_windows(args.test, params.data)
    manifest = load_json(args.manifest)
    run_id = run_id_of(args.run_info)
    require_file(args.model, "model file")
    remove_outputs(args.metrics, args.per_step, args.diagrams)

    from nextframe.io import write_csv, write_json
    from nextframe.model import load_predictor
    from nextframe.ops.registry import crown_if_best
    from nextframe.ops.tracking import log_evaluation

    evaluation = get_part(params.data.domain, "evaluation")  # imports Keras: after the checks
    model = load_predictor(args.model, frames_of=test_windows)
    report, rows = evaluation.evaluate(model, test_windows, params, manifest, args.test_archives)
    diagrams = report.pop("diagrams", {})
    log_evaluation(run_id, report, rows, diagrams)
    decision = crown_if_best(run_id, domain.registry_score(report), domain.registry_alias)
    args.diagrams.mkdir(parents=True)
    for name, diagram_rows in diagrams.items():
        if diagram_rows:  # e.g. no spectra where the horizon ends before 30 minutes
            write_csv(args.diagrams / f"{name}.csv", diagram_rows, lambda value: f"{value:.6g}")
    write_json(args.metrics, report)
    write_csv(args.per_step, rows, lambda value: f"{value:.6g}")
    print(f"evaluate: {evaluation.summary(report)}")
    print(f"evaluate: {decision.describe()}")


if __name__ == "__main__":
    cli.run(main)
