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
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from nextframe.data.windows import INDEX, open_radar_windows
from nextframe.domains.rain.forecast import predict_rain
from nextframe.domains.rain.nowcast import RainScores, ScoreSpec, motion_field, scored_baselines
from nextframe.io import load_json
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
    test_sets: Mapping[str, Any],
    n_context: int,
    horizon: int,
    spec: ScoreSpec,
    with_baselines: bool,
) -> tuple[dict, list[dict[str, float]]]:
    """Scores of the model (and pysteps' nowcasts) on every test window of every archive
    (`test_sets`: its label -> its windows, one grid step and pixel size); (report, rows).
    The report and rows pool every archive's windows; with more than one archive, the report
    holds each one's own under `archives`.

    pysteps' nowcasts of each window run and are scored in worker processes (one per core but
    one) while this process runs and scores the model: both are mostly one core's numpy. A
    Lagrangian model and pysteps' extrapolation and S-PROG advect along the same motion, found
    once a window."""
    scale = model.frames.rain
    lagrangian = model.frames.formulation.frame == "lagrangian"
    pooled: dict[str, RainScores] = {}
    apart: dict[str, dict[str, RainScores]] = {label: {} for label in test_sets}
    pending: deque = deque()
    workers = max(1, (os.cpu_count() or 1) - 1)

    def add(label: str, name: str, forecast: np.ndarray, truth: np.ndarray) -> None:
        for scores in (pooled, apart[label]):
            scores.setdefault(name, RainScores(spec, horizon)).add(forecast, truth)

    def score_oldest() -> None:
        label, future = pending.popleft()
        for name, scored in future.result().items():
            for scores in (pooled, apart[label]):
                scores.setdefault(name, RainScores(spec, horizon)).merge(scored)

    with contextlib.ExitStack() as stack:
        pool = None
        if with_baselines:
            spawn = multiprocessing.get_context("spawn")  # nothing of Keras is forked
            pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=spawn))
        for label, test_windows in test_sets.items():
            for index in range(len(test_windows)):
                rain = scale.decode_mmh(test_windows[index][: n_context + horizon, ..., 0])
                context, truth = rain[:n_context], rain[n_context:]
                motion = motion_field(context) if lagrangian else None
                if pool is not None:
                    task = pool.submit(scored_baselines, context, truth, spec, motion)
                    pending.append((label, task))
                motions = None if motion is None else motion[None]
                forecast = predict_rain(model, context[None], horizon, motions=motions)[0]
                add(label, "model", forecast, truth)
                while len(pending) > workers:  # a few windows' nowcasts in memory at a time
                    score_oldest()
        while pending:
            score_oldest()
    per_lead = {name: each.per_lead() for name, each in pooled.items()}
    report = _report(per_lead, sum(len(windows) for windows in test_sets.values()))
    report.update(n_context=n_context, horizon=horizon, timestep_minutes=spec.timestep_minutes)
    if len(test_sets) > 1:
        report["archives"] = {
            label: _report(
                {name: each.per_lead() for name, each in apart[label].items()},
                len(test_sets[label]),
            )
            for label in test_sets
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


def _report(per_lead: dict[str, list[dict[str, float]]], n_windows: int) -> dict:
    """The model's and each baseline's summary (`summarize_leads`) of their per-lead rows; the
    model's `mse` is its rain rate's (RMSE squared), the figure radar models are compared by."""
    summaries = {name: summarize_leads(rows) for name, rows in per_lead.items()}
    model = summaries.pop("model")
    model["mse"] = model["rmse"] ** 2
    return {"model": model, "baselines": summaries, "n_windows": n_windows}


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


def evaluate(model, windows, params, manifest, test_archives: Path | None = None):
    """pysteps' scores per lead time on the held-out events' whole domain, the model
    beside pysteps' nowcasts: of the first archive's test windows (`windows`) and of each of
    `data.radar.archives` (their files in `test_archives`), pooled and per archive."""
    data, radar = params.data, manifest["radar"]
    spec = score_spec(params.evaluate, radar["grid"]["pixel_km"], radar["timestep_minutes"])
    first = radar.get("network", "radar")  # a manifest written before archives named none
    more = load_json(test_archives / INDEX) if test_archives is not None else []
    test_sets = {first: windows}
    for each in more:
        test_sets[each["label"]] = open_radar_windows(test_archives / each["file"], data.n_frames)
    report, rows = evaluate_radar(
        model, test_sets, data.n_context, data.horizon, spec, params.evaluate.nowcasts
    )
    report["test_events"] = radar["events"]["test"]
    if more:
        report["archives"][first]["test_events"] = radar["events"]["test"]
        for each in more:
            report["archives"][each["label"]]["test_events"] = each["events"]["test"]
    return report, rows


def summary(report):
    """CSI >= 1 mm/h at 5, 30 and 60 minutes of each nowcast, pooled, and per archive where
    more than one was scored."""

    def csi_line(scores_of: dict) -> str:
        lines = []
        for name, scores in {"model": scores_of["model"], **scores_of["baselines"]}.items():
            at = [scores.get(f"at_{m}min", {}).get("csi_1") for m in (5, 30, 60)]
            shown = " / ".join("-" if v is None else f"{v:.2f}" for v in at)
            lines.append(f"{name} {shown}")
        return "; ".join(lines)

    text = f"CSI >= 1 mm/h at 5 / 30 / 60 min: {csi_line(report)}"
    for label, each in report.get("archives", {}).items():
        text += f"\n  {label} ({each['n_windows']} windows): {csi_line(each)}"
    return text
