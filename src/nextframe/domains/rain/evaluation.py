"""A radar model judged as nowcasters judge: `pysteps.verification` scores per lead time in
minutes, on the held-out events' whole domain, beside pysteps' own nowcasts on the same
windows (`nextframe.domains.rain.nowcast`).

`metrics/eval.json` holds each nowcast's scores at 5, 30 and 60 minutes (those within the
horizon) and their mean over every lead; the per-lead CSV holds one row per lead time with a
column per nowcast and score (`model_csi_1`, `extrapolation_fss_1_16km`, ...), keyed by its
its `lead_minutes` and its `step` (as every domain's rows are).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from nextframe.domains.rain.forecast import predict_rain
from nextframe.domains.rain.nowcast import RainScores, ScoreSpec, motion_field, radar_baselines
from nextframe.model import NextFramePredictor
from nextframe.params import EvaluateParams

REPORTED_MINUTES = (5, 30, 60)


def score_spec(evaluate: EvaluateParams, pixel_km: float, timestep_minutes: float) -> ScoreSpec:
    """The scores `evaluate` params ask for, on a grid of `pixel_km` every `timestep_minutes`."""
    return ScoreSpec(
        tuple(evaluate.thresholds),
        tuple(evaluate.fss_thresholds),
        tuple(evaluate.scales),
        pixel_km,
        timestep_minutes,
    )


def evaluate_radar(
    model: NextFramePredictor,
    test_windows,
    n_context: int,
    horizon: int,
    spec: ScoreSpec,
    with_baselines: bool,
) -> tuple[dict, list[dict[str, float]]]:
    """Scores of the model (and pysteps' nowcasts) on every test window; (report, rows).

    pysteps' nowcasts of each window run in worker processes (one per core but one) while
    this process runs the model: both are mostly one core's numpy. A Lagrangian model and
    pysteps' extrapolation and S-PROG advect along the same motion, found once a window."""
    scale = model.frames.rain
    lagrangian = model.frames.formulation.frame == "lagrangian"
    scores: dict[str, RainScores] = {"model": RainScores(spec, horizon)}
    pending: deque = deque()
    workers = max(1, (os.cpu_count() or 1) - 1)

    def score_oldest() -> None:
        truth, future = pending.popleft()
        for name, forecast in future.result().items():
            scores.setdefault(name, RainScores(spec, horizon)).add(forecast, truth)

    with contextlib.ExitStack() as stack:
        pool = None
        if with_baselines:
            spawn = multiprocessing.get_context("spawn")  # nothing of Keras is forked
            pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=spawn))
        for index in range(len(test_windows)):
            rain = scale.decode_mmh(test_windows[index][: n_context + horizon, ..., 0])
            context, truth = rain[:n_context], rain[n_context:]
            motion = motion_field(context) if lagrangian else None
            if pool is not None:
                pending.append((truth, pool.submit(radar_baselines, context, horizon, motion)))
            motions = None if motion is None else motion[None]
            forecast = predict_rain(model, context[None], horizon, motions=motions)[0]
            scores["model"].add(forecast, truth)
            while len(pending) > workers:  # a few windows' nowcasts in memory at a time
                score_oldest()
        while pending:
            score_oldest()
    per_lead = {name: each.per_lead() for name, each in scores.items()}
    summaries = {name: summarize_leads(rows) for name, rows in per_lead.items()}
    report = {
        "model": summaries.pop("model"),
        "baselines": summaries,
        "n_windows": len(test_windows),
        "n_context": n_context,
        "horizon": horizon,
        "timestep_minutes": spec.timestep_minutes,
    }
    rows = [
        {
            "lead_minutes": lead_rows[0]["lead_minutes"],
            "step": step + 1,
            **{
                f"{name}_{key}": value
                for name, row in zip(per_lead, lead_rows, strict=True)
                for key, value in row.items()
                if key != "lead_minutes"
            },
        }
        for step, lead_rows in enumerate(zip(*per_lead.values(), strict=True))
    ]
    return report, rows


def summarize_leads(rows: list[dict[str, float]]) -> dict:
    """Each score's mean over the leads (NaN leads left out), and every score at 5, 30 and
    60 minutes (`at_30min`), those the horizon reaches."""
    keys = [key for key in rows[0] if key != "lead_minutes"]
    out: dict = {}
    for key in keys:
        values = np.array([row[key] for row in rows], dtype=np.float64)
        finite = values[np.isfinite(values)]
        out[key] = float(finite.mean()) if finite.size else float("nan")
    for minutes in REPORTED_MINUTES:
        for row in rows:
            if abs(row["lead_minutes"] - minutes) < 1e-6:
                out[f"at_{minutes}min"] = {key: row[key] for key in keys}
    return out


def evaluate(model, windows, params, manifest):
    """pysteps' scores per lead time on the held-out events' whole domain, the model
    beside pysteps' nowcasts; the model's `mse` is its rain rate's (RMSE squared), the
    figure radar models are compared by."""
    data, radar = params.data, manifest["radar"]
    spec = score_spec(params.evaluate, radar["grid"]["pixel_km"], radar["timestep_minutes"])
    report, rows = evaluate_radar(
        model, windows, data.n_context, data.horizon, spec, params.evaluate.nowcasts
    )
    report["test_events"] = radar["events"]["test"]
    report["model"]["mse"] = report["model"]["rmse"] ** 2
    return report, rows


def summary(report):
    lines = []
    for name, scores in {"model": report["model"], **report["baselines"]}.items():
        at = [scores.get(f"at_{m}min", {}).get("csi_1") for m in (5, 30, 60)]
        shown = " / ".join("-" if v is None else f"{v:.2f}" for v in at)
        lines.append(f"{name} {shown}")
    return f"CSI >= 1 mm/h at 5 / 30 / 60 min: {'; '.join(lines)}"
