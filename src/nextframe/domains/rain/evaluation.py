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
import dataclasses
import multiprocessing
import os
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from nextframe.data.windows import INDEX, open_radar_windows
from nextframe.domains.rain.ensemble import EnsembleSpec, scored_steps, window_seed
from nextframe.domains.rain.ensemble_scores import EnsembleScores
from nextframe.domains.rain.forecast import forecast_and_members
from nextframe.domains.rain.nowcast import RainScores, ScoreSpec, motion_field, radar_baselines
from nextframe.domains.rain.perturbed import grown_around, member_seed
from nextframe.io import load_json
from nextframe.model import NextFramePredictor
from nextframe.params import EvaluateParams
from nextframe.spectra import Spectra

REPORTED_MINUTES = (5, 30, 60)
SPECTRA_MINUTES = (30, 60)
# Scales a blurred nowcast loses first (DGMR and NowcastNet show spectra under ~16 km):
# each nowcast's variance at wavelengths under this, over the truth's, in the report.
SMALL_SCALES_KM = 16


def score_spec(evaluate: EvaluateParams, pixel_km: float, timestep_minutes: float) -> ScoreSpec:
    """The scores `evaluate` params ask for, on a grid of `pixel_km` every `timestep_minutes`."""
    return ScoreSpec(
        tuple(evaluate.thresholds),
        tuple(evaluate.fss_thresholds),
        tuple(evaluate.scales),
        pixel_km,
        timestep_minutes,
    )


def _scored_nowcasts(
    context: np.ndarray,
    truth: np.ndarray,
    spec: ScoreSpec,
    motion: np.ndarray | None,
    baselines: bool,
    ensemble: EnsembleSpec | None,
    seed: int,
    spectra: Spectra | None,
) -> tuple[dict[str, RainScores], dict[str, EnsembleScores], Spectra | None]:
    """What a worker process does for one window: pysteps' deterministic nowcasts (where
    `baselines`) and STEPS (where `ensemble`), each scored, and their power spectra added to
    `spectra` (where given: a window of the grid spectra are taken on)."""
    n_leads = len(truth)
    scored, ensembles = {}, {}
    if baselines:
        for name, forecast in radar_baselines(context, n_leads, motion).items():
            scored[name] = RainScores(spec, n_leads)
            scored[name].add(forecast, truth)
            if spectra is not None and name != "persistence":  # persistence: the observed
                spectra.add(name, forecast)
    if ensemble is not None:
        ensembles["steps"], scored["steps_mean"] = scored_steps(
            context, truth, spec, ensemble, seed, spectra
        )
    return scored, ensembles, spectra


def evaluate_radar(
    model: NextFramePredictor,
    test_sets: Mapping[str, Any],
    n_context: int,
    horizon: int,
    spec: ScoreSpec,
    with_baselines: bool,
    ensemble: EnsembleSpec | None = None,
    seed: int = 0,
) -> tuple[dict, list[dict[str, float]]]:
    """Scores of the model (and pysteps' nowcasts) on every test window of every archive
    (`test_sets`: its label -> its windows, one grid step and pixel size); (report, rows).
    The report and rows pool every archive's windows; with more than one archive, the report
    holds each one's own under `archives`. With an `ensemble`, the model's own members
    (`nextframe.domains.rain.perturbed`) and pysteps' STEPS run on every window too (each
    seeded from `seed`, the archive and the window): their probabilistic scores under
    `ensembles` (`model_ensemble`, `steps`), their members' means among the deterministic
    nowcasts (`model_ensemble_mean`, `steps_mean`).

    pysteps' nowcasts of each window run and are scored in worker processes (one per core but
    one) while this process runs and scores the model: both are mostly one core's numpy. A
    Lagrangian model and pysteps' extrapolation and S-PROG advect along the same motion, found
    once a window."""
    scale = model.frames.rain
    lagrangian = model.frames.formulation.frame == "lagrangian"
    pooled: dict[str, RainScores] = {}
    apart: dict[str, dict[str, RainScores]] = {label: {} for label in test_sets}
    pooled_ensembles: dict[str, EnsembleScores] = {}
    apart_ensembles: dict[str, dict[str, EnsembleScores]] = {label: {} for label in test_sets}
    pending: deque = deque()
    workers = max(1, (os.cpu_count() or 1) - 1)
    first_grid = next(iter(test_sets.values())).shape[2:4]
    spectra = _spectra(first_grid, spec, horizon)

    def add(label: str, name: str, forecast: np.ndarray, truth: np.ndarray) -> None:
        for scores in (pooled, apart[label]):
            scores.setdefault(name, RainScores(spec, horizon)).add(forecast, truth)

    def add_ensemble(label: str, name: str, members: np.ndarray, truth: np.ndarray) -> None:
        scores = EnsembleScores(members.shape[0], horizon, spec.thresholds_mmh)
        for lead in range(horizon):
            scores.accumulate(lead, members[:, lead], truth[lead])
        for each in (pooled_ensembles, apart_ensembles[label]):
            each[name] = each[name].merge(scores) if name in each else scores
        add(label, f"{name}_mean", members.mean(axis=0), truth)

    def score_oldest() -> None:
        label, future = pending.popleft()
        scored, ensembles, window_spectra = future.result()
        if window_spectra is not None:
            spectra.merge(window_spectra)
        for name, each in scored.items():
            for scores in (pooled, apart[label]):
                scores.setdefault(name, RainScores(spec, horizon)).merge(each)
        for name, each in ensembles.items():
            for scores in (pooled_ensembles, apart_ensembles[label]):
                scores[name] = scores[name].merge(each) if name in scores else each

    with contextlib.ExitStack() as stack:
        pool = None
        if with_baselines or ensemble is not None:
            spawn = multiprocessing.get_context("spawn")  # nothing of Keras is forked
            pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=spawn))
        for number, (label, test_windows) in enumerate(test_sets.items()):
            archive_ensemble = (  # STEPS' motion perturbations are fitted per network
                dataclasses.replace(ensemble, network=label.split("[")[0]) if ensemble else None
            )
            for index in range(len(test_windows)):
                rain = scale.decode_mmh(test_windows[index][: n_context + horizon, ..., 0])
                context, truth = rain[:n_context], rain[n_context:]
                motion = motion_field(context) if lagrangian else None
                if pool is not None:
                    window = window_seed(seed, number, index)
                    task = pool.submit(
                        _scored_nowcasts,
                        context,
                        truth,
                        spec,
                        motion,
                        with_baselines,
                        archive_ensemble,
                        window,
                        _spectra(first_grid, spec, horizon) if number == 0 else None,
                    )
                    pending.append((label, task))
                grow = None
                if archive_ensemble is not None:
                    grow = grown_around(archive_ensemble, [member_seed(seed, number, index)])
                forecasts, ensembles = forecast_and_members(
                    model,
                    context[None],
                    horizon,
                    grow,
                    motions=None if motion is None else motion[None],
                )
                forecast = forecasts[0]
                add(label, "model", forecast, truth)
                if ensembles is not None:
                    members = ensembles[0]
                    add_ensemble(label, "model_ensemble", members, truth)
                if number == 0:
                    spectra.add("observed", truth)
                    spectra.add("model", forecast)
                    if archive_ensemble is not None:
                        spectra.add("model_member", members[0])
                while len(pending) > workers:  # a few windows' nowcasts in memory at a time
                    score_oldest()
        while pending:
            score_oldest()
    n_windows = sum(len(windows) for windows in test_sets.values())
    report = _report(pooled, pooled_ensembles, n_windows, spec.timestep_minutes)
    report.update(n_context=n_context, horizon=horizon, timestep_minutes=spec.timestep_minutes)
    if power := spectra.power_under(SMALL_SCALES_KM):
        report[f"power_under_{SMALL_SCALES_KM}km"] = power
    report["diagrams"] = {
        **_diagrams(pooled_ensembles, spec.timestep_minutes),
        "spectra": spectra.rows(),
    }
    if len(test_sets) > 1:
        report["archives"] = {
            label: _report(
                apart[label], apart_ensembles[label], len(test_sets[label]), spec.timestep_minutes
            )
            for label in test_sets
        }
    per_lead = {name: each.per_lead() for name, each in pooled.items()}
    if clash := set(per_lead) & set(pooled_ensembles):  # one column prefix, one nowcast
        raise ValueError(f"an ensemble named as a deterministic nowcast: {sorted(clash)}")
    per_lead.update(
        {name: _scalars(each, spec.timestep_minutes) for name, each in pooled_ensembles.items()}
    )
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


def _spectra(grid: tuple[int, int], spec: ScoreSpec, horizon: int) -> Spectra:
    """Power spectra at 30 and 60 minutes (those within the horizon), wavelengths in km."""
    leads = {
        f"{minutes}min": lead
        for minutes in SPECTRA_MINUTES
        if (lead := round(minutes / spec.timestep_minutes) - 1) < horizon
        and abs((lead + 1) * spec.timestep_minutes - minutes) < 1e-6
    }
    return Spectra(grid, spec.pixel_km, leads, x_name="wavelength_km")


def _scalars(scores: EnsembleScores, timestep_minutes: float) -> list[dict[str, float]]:
    """An ensemble's per-lead rows without their histograms and diagrams, with the lead
    time in minutes, as the deterministic nowcasts' rows have it."""
    return [
        {
            "lead_minutes": float((lead + 1) * timestep_minutes),
            **{key: float(value) for key, value in row.items() if isinstance(value, float)},
        }
        for lead, row in enumerate(scores.per_lead())
    ]


def _diagrams(ensembles: dict[str, EnsembleScores], timestep_minutes: float) -> dict:
    """`dvc plots`' rows of each ensemble's rank histogram (`rankhist`: the observation's
    share at each rank, a column per ensemble and reported lead) and reliability diagram
    (`reliability`: the observed frequency in each forecast probability bin, a column per
    ensemble, threshold and reported lead, beside the diagonal of a reliable one)."""
    rankhist: dict[str, list[float]] = {}
    reliability: dict[str, list[float]] = {}
    for name, scores in ensembles.items():
        for lead, row in enumerate(scores.per_lead()):
            minutes = (lead + 1) * timestep_minutes
            if not any(abs(minutes - m) < 1e-6 for m in REPORTED_MINUTES):
                continue
            rankhist[f"{name}_{minutes:g}min"] = row["rankhist"]
            for threshold in scores.thresholds_mmh:
                diagram = row[f"reliability_{threshold:g}"]
                reliability[f"{name}_{threshold:g}mmh_{minutes:g}min"] = diagram["observed"]
    if not ensembles:
        return {}
    n_ranks = max((len(v) for v in rankhist.values()), default=0)
    n_bins = max((len(v) for v in reliability.values()), default=0)
    return {
        "rankhist": [
            {"rank": rank, **{k: v[rank] if v else float("nan") for k, v in rankhist.items()}}
            for rank in range(n_ranks)
        ],
        "reliability": [
            {
                "probability": (b + 0.5) / n_bins,
                "perfect": (b + 0.5) / n_bins,
                **{k: v[b] for k, v in reliability.items()},
            }
            for b in range(n_bins)
        ],
    }


def _report(
    scores: dict[str, RainScores],
    ensembles: dict[str, EnsembleScores],
    n_windows: int,
    timestep_minutes: float,
) -> dict:
    """The model's and each baseline's summary (`summarize_leads`) of their per-lead rows; the
    model's `mse` is its rain rate's (RMSE squared), the figure radar models are compared by.
    Each ensemble's probabilistic scores likewise, under `ensembles`."""
    summaries = {name: summarize_leads(each.per_lead()) for name, each in scores.items()}
    model = summaries.pop("model")
    model["mse"] = model["rmse"] ** 2
    report = {"model": model, "baselines": summaries, "n_windows": n_windows}
    if ensembles:
        report["ensembles"] = {
            name: {
                "n_members": each.n_members,
                **summarize_leads(_scalars(each, timestep_minutes)),
            }
            for name, each in ensembles.items()
        }
    return report


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
    members = params.evaluate.ensemble_members
    ensemble = (
        None
        if members is None
        else EnsembleSpec(members, radar["grid"]["pixel_km"], radar["timestep_minutes"])
    )
    report, rows = evaluate_radar(
        model,
        test_sets,
        data.n_context,
        data.horizon,
        spec,
        params.evaluate.nowcasts,
        ensemble,
        params.seed,
    )
    report["test_events"] = radar["events"]["test"]
    if more:
        report["archives"][first]["test_events"] = radar["events"]["test"]
        for each in more:
            report["archives"][each["label"]]["test_events"] = each["events"]["test"]
    return report, rows


def summary(report):
    """CSI >= 1 mm/h at 5, 30 and 60 minutes of each nowcast, pooled, and per archive where
    more than one was scored; each ensemble's CRPS."""

    def csi_line(scores_of: dict) -> str:
        lines = []
        for name, scores in {"model": scores_of["model"], **scores_of["baselines"]}.items():
            at = [scores.get(f"at_{m}min", {}).get("csi_1") for m in (5, 30, 60)]
            shown = " / ".join("-" if v is None else f"{v:.2f}" for v in at)
            lines.append(f"{name} {shown}")
        return "; ".join(lines)

    text = f"CSI >= 1 mm/h at 5 / 30 / 60 min: {csi_line(report)}"
    if ensembles := report.get("ensembles"):
        crps = "; ".join(
            f"{name} "
            + " / ".join(
                f"{scores[f'at_{m}min']['crps']:.3f}" if f"at_{m}min" in scores else "-"
                for m in (5, 30, 60)
            )
            for name, scores in ensembles.items()
        )
        text += f"\nensembles' CRPS (mm/h) at 5 / 30 / 60 min: {crps}"
    for label, each in report.get("archives", {}).items():
        text += f"\n  {label} ({each['n_windows']} windows): {csi_line(each)}"
    return text
