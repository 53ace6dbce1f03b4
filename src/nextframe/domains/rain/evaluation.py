"""A radar model judged as nowcasters judge: `pysteps.verification` scores per lead time in
minutes, on the held-out events' whole domain, beside pysteps' own nowcasts on the same
windows (`nextframe.domains.rain.nowcast`).

`metrics/eval.json` holds each nowcast's scores at 5, 30 and 60 minutes (those within the
horizon) and their mean over every lead; the per-lead CSV holds one row per lead time with a
column per nowcast and score (`model_csi_1`, `extrapolation_fss_1_16km`, ...), keyed by its
its `lead_minutes` and its `step` (as every domain's rows are).
"""

from __future__ import annotations

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


def nowcasts_of(
    model: NextFramePredictor, context_mmh: np.ndarray, horizon: int, with_baselines: bool
) -> dict[str, np.ndarray]:
    """One window's nowcasts (horizon, H, W) mm/h: the model's, then pysteps' if asked. A
    Lagrangian model and pysteps' extrapolation and S-PROG advect along the same motion: it is
    found once."""
    motion = None
    if with_baselines and model.frames.formulation.frame == "lagrangian":
        motion = motion_field(context_mmh)
    motions = None if motion is None else motion[None]
    out = {"model": predict_rain(model, context_mmh[None], horizon, motions=motions)[0]}
    if with_baselines:
        out.update(radar_baselines(context_mmh, horizon, velocity=motion))
    return out


def evaluate_radar(
    model: NextFramePredictor,
    test_windows,
    n_context: int,
    horizon: int,
    spec: ScoreSpec,
    with_baselines: bool,
) -> tuple[dict, list[dict[str, float]]]:
    """Scores of the model (and pysteps' nowcasts) on every test window; (report, rows)."""
    scale = model.frames.rain
    scores: dict[str, RainScores] = {}
    for index in range(len(test_windows)):
        rain = scale.decode_mmh(test_windows[index][: n_context + horizon, ..., 0])
        context, truth = rain[:n_context], rain[n_context:]
        for name, forecast in nowcasts_of(model, context, horizon, with_baselines).items():
            scores.setdefault(name, RainScores(spec, horizon)).add(forecast, truth)
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
