"""The radar field's scores per lead time and pysteps' nowcasts as baselines, all through pysteps.

Scores (`RainScores`) compare rain-rate forecasts with observations in mm/h, skipping no-data
pixels (NaN). Baselines (`radar_baselines`) are pysteps' persistence, semi-Lagrangian
extrapolation and S-PROG, run as pysteps' own examples run them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from nextframe.errors import NextframeError
from nextframe.motion import pysteps, quiet

BASELINE_NAMES = ("persistence", "extrapolation", "sprog")
CATEGORICAL_SCORES = ("CSI", "POD", "FAR", "ETS")

# pysteps' examples: dB with rain below 0.1 mm/h (-10 dB) set to -15 dB, also the fill for NaN.
RAIN_THRESHOLD_MMH = 0.1
RAIN_THRESHOLD_DB = -10.0
ZERO_DB = -15.0
SPROG_CASCADE_LEVELS = 6
SPROG_AR_ORDER = 2


@dataclass(frozen=True)
class ScoreSpec:
    """What `RainScores` computes: thresholds in mm/h, FSS scales in km on a grid of `pixel_km`."""

    thresholds_mmh: tuple[float, ...]  # CSI/POD/FAR/ETS at each
    fss_thresholds_mmh: tuple[float, ...]  # FSS at each
    scales_km: tuple[float, ...]  # FSS neighbourhood widths
    pixel_km: float  # grid spacing, to turn km into pixels
    timestep_minutes: float  # lead time of step i (1-based) is i * timestep

    def __post_init__(self) -> None:
        for name in ("pixel_km", "timestep_minutes"):
            value = getattr(self, name)
            if not value > 0:
                raise NextframeError(f"scores: {name} must be positive, got {value}")
        for name in ("thresholds_mmh", "fss_thresholds_mmh", "scales_km"):
            values = getattr(self, name)
            if not values or any(not v > 0 for v in values):
                raise NextframeError(f"scores: {name} must be positive numbers, got {values}")

    def scale_pixels(self, scale_km: float) -> int:
        """An FSS window of `scale_km` in whole pixels (rounded, at least 1)."""
        return max(1, round(scale_km / self.pixel_km))


class RainScores:
    """Accumulates forecasts against observations for one nowcast, per lead step.

    A pixel that is NaN in the forecast or the observation (no data, outside the radar domain)
    is skipped. pysteps on its own would not skip it everywhere, so each score gets the mask:

    - CSI/POD/FAR/ETS (`det_cat_fct_accum`, event: rain > threshold): pysteps turns NaN into a
      non-event (a comparison with NaN is False), so a NaN observation under forecast rain
      would count as a false alarm and a NaN on both sides as a correct negative (which moves
      ETS). Only the pixels valid on both sides are passed.
    - MAE/RMSE (`det_cont_fct_accum`): pysteps drops a NaN residual already; only the valid
      pixels are passed too, so its running means never meet an empty set.
    - FSS (`fss_accum`, event: rain >= threshold): pysteps sets NaN to "below threshold" and
      smooths with zeros beyond the grid's edge. Masked pixels are made NaN in both fields, so
      they count as neither forecast nor observed event (a NaN observation under forecast rain
      is not a miss). Being a neighbourhood score, the windows centred on masked pixels still
      add their fractions of valid neighbours to pysteps' sums, as windows past the grid's edge
      do; that is pysteps' FSS with the no-data area dry on both sides.

    A score is NaN where it is undefined: CSI/POD/FAR/ETS when a lead has no event in the
    denominators (e.g. POD with nothing observed above the threshold), FSS when neither field
    has an event, MAE/RMSE when no pixel was valid.
    """

    def __init__(self, spec: ScoreSpec, n_leads: int) -> None:
        if n_leads < 1:
            raise NextframeError(f"scores: n_leads must be at least 1, got {n_leads}")
        verification = pysteps().verification
        self.spec = spec
        self.n_leads = n_leads
        self._contables = [
            {thr: verification.det_cat_fct_init(thr) for thr in spec.thresholds_mmh}
            for _ in range(n_leads)
        ]
        self._fss = [
            {
                (thr, scale): verification.fss_init(thr, spec.scale_pixels(scale))
                for thr in spec.fss_thresholds_mmh
                for scale in spec.scales_km
            }
            for _ in range(n_leads)
        ]
        self._errors = [verification.det_cont_fct_init() for _ in range(n_leads)]
        self._n_valid = np.zeros(n_leads, dtype=np.int64)

    def add(self, forecast_mmh: np.ndarray, observed_mmh: np.ndarray) -> None:
        """(L, H, W) or (N, L, H, W) in mm/h. A pixel that is NaN in either is skipped by every
        score (no-data, outside the radar domain)."""
        forecast = np.asarray(forecast_mmh, dtype=np.float64)
        observed = np.asarray(observed_mmh, dtype=np.float64)
        if forecast.shape != observed.shape:
            raise NextframeError(
                f"scores: forecast shape {forecast.shape} differs from observed {observed.shape}"
            )
        if forecast.ndim == 3:
            forecast, observed = forecast[None], observed[None]
        if forecast.ndim != 4 or forecast.shape[1] != self.n_leads:
            raise NextframeError(
                f"scores: expected (L, H, W) or (N, L, H, W) with L = {self.n_leads} leads, "
                f"got {np.shape(forecast_mmh)}"
            )
        verification = pysteps().verification
        for forecast_seq, observed_seq in zip(forecast, observed, strict=True):
            for lead, (fct, obs) in enumerate(zip(forecast_seq, observed_seq, strict=True)):
                valid = np.isfinite(fct) & np.isfinite(obs)
                for fss in self._fss[lead].values():
                    verification.fss_accum(
                        fss, np.where(valid, fct, np.nan), np.where(valid, obs, np.nan)
                    )
                if not valid.any():
                    continue
                self._n_valid[lead] += valid.sum()
                for contable in self._contables[lead].values():
                    verification.det_cat_fct_accum(contable, fct[valid], obs[valid])
                verification.det_cont_fct_accum(self._errors[lead], fct[valid], obs[valid])

    def merge(self, other: RainScores) -> None:
        """Add the windows `other` scored (in a worker process, say) to these, with pysteps'
        merge functions: the same sums as scoring them here, in the same order."""
        verification = pysteps().verification
        for lead in range(self.n_leads):
            for key, fss in self._fss[lead].items():
                self._fss[lead][key] = verification.fss_merge(fss, other._fss[lead][key])
            if not other._n_valid[lead]:
                continue
            if not self._n_valid[lead]:  # pysteps merges nothing into an empty table
                self._contables[lead] = copy.deepcopy(other._contables[lead])
                self._errors[lead] = copy.deepcopy(other._errors[lead])
            else:
                for key, table in self._contables[lead].items():
                    merged = verification.det_cat_fct_merge(table, other._contables[lead][key])
                    self._contables[lead][key] = copy.deepcopy(merged)
                self._errors[lead] = copy.deepcopy(
                    verification.det_cont_fct_merge(self._errors[lead], other._errors[lead])
                )
            self._n_valid[lead] += other._n_valid[lead]

    def per_lead(self) -> list[dict[str, float]]:
        """One row per lead: `lead_minutes`, then `csi_0.5`, `pod_0.5`, `far_0.5`, `ets_0.5`
        per threshold, `fss_1_16km` per FSS threshold and scale, `mae` and `rmse` in mm/h."""
        verification = pysteps().verification
        rows = []
        for lead in range(self.n_leads):
            row = {"lead_minutes": float((lead + 1) * self.spec.timestep_minutes)}
            seen = self._n_valid[lead] > 0
            with np.errstate(divide="ignore", invalid="ignore"):
                for thr, contable in self._contables[lead].items():
                    scores = (
                        verification.det_cat_fct_compute(contable, list(CATEGORICAL_SCORES))
                        if seen
                        else {}
                    )
                    for name in CATEGORICAL_SCORES:
                        row[f"{name.lower()}_{thr:g}"] = float(scores.get(name, np.nan))
                for (thr, scale), fss in self._fss[lead].items():
                    row[f"fss_{thr:g}_{scale:g}km"] = float(verification.fss_compute(fss))
            errors = (
                verification.det_cont_fct_compute(self._errors[lead], ["MAE", "RMSE"])
                if seen
                else {}
            )
            row["mae"] = float(errors.get("MAE", np.nan))
            row["rmse"] = float(errors.get("RMSE", np.nan))
            rows.append(row)
        return rows


def check_context(context_mmh: np.ndarray, n_leads: int, min_frames: int) -> np.ndarray:
    context = np.asarray(context_mmh, dtype=np.float64)
    if context.ndim != 3 or context.shape[0] < min_frames:
        raise NextframeError(
            f"nowcast: context must be (T, H, W) rain rate with T >= {min_frames}, "
            f"got shape {context.shape}"
        )
    if n_leads < 1:
        raise NextframeError(f"nowcast: n_leads must be at least 1, got {n_leads}")
    if np.isnan(context[-1]).all():
        raise NextframeError("nowcast: the last context frame is NaN everywhere (no radar domain)")
    return context


def to_db(context_mmh: np.ndarray) -> np.ndarray:
    """dB as in pysteps' examples, with no-data (NaN) filled as no rain."""
    db = pysteps().utils.transformation.dB_transform(
        context_mmh, threshold=RAIN_THRESHOLD_MMH, zerovalue=ZERO_DB
    )[0]
    db[~np.isfinite(db)] = ZERO_DB
    return db


def to_mmh(forecast_db: np.ndarray, last_mmh: np.ndarray) -> np.ndarray:
    """Back to mm/h (below 0.1 mm/h is 0); NaN exactly outside the last context frame's domain.

    pysteps' semi-Lagrangian scheme leaves NaN where a pixel's trajectory starts beyond the
    grid; inside the domain that inflow is taken as dry, as the no-data area (filled dry) is.
    """
    forecast = pysteps().utils.transformation.dB_transform(
        forecast_db, threshold=RAIN_THRESHOLD_DB, inverse=True
    )[0]
    forecast[np.isnan(forecast)] = 0.0
    forecast[:, np.isnan(last_mmh)] = np.nan
    return forecast


def lucas_kanade_db(context_db: np.ndarray) -> np.ndarray:
    """(2, H, W) Lucas-Kanade motion in pixels per step, from every context frame."""
    with quiet():
        return pysteps().motion.get_method("LK")(context_db)


def motion_field(context_mmh: np.ndarray) -> np.ndarray:
    """(T >= 2, H, W) mm/h -> (2, H, W): the Lucas-Kanade motion, in pixels per time step, that
    the extrapolation nowcast and S-PROG advect with (zero where the context holds no rain to
    track)."""
    context = check_context(context_mmh, 1, min_frames=2)
    return lucas_kanade_db(to_db(context))


def _persistence(context: np.ndarray, n_leads: int) -> np.ndarray:
    with quiet():
        return pysteps().nowcasts.get_method("eulerian")(context[-1], None, n_leads)


def _extrapolation(
    context: np.ndarray, context_db: np.ndarray, velocity: np.ndarray, n_leads: int
) -> np.ndarray:
    # In dB and back, as pysteps' extrapolation example does.
    with quiet():
        forecast_db = pysteps().nowcasts.get_method("extrapolation")(
            context_db[-1], velocity, n_leads
        )
    return to_mmh(forecast_db, context[-1])


def _sprog(
    context: np.ndarray, context_db: np.ndarray, velocity: np.ndarray, n_leads: int
) -> np.ndarray:
    with quiet():
        forecast_db = pysteps().nowcasts.get_method("sprog")(
            context_db[-(SPROG_AR_ORDER + 1) :],
            velocity,
            n_leads,
            precip_thr=RAIN_THRESHOLD_DB,
            n_cascade_levels=SPROG_CASCADE_LEVELS,
            ar_order=SPROG_AR_ORDER,
        )
    return to_mmh(forecast_db, context[-1])


def persistence(context_mmh: np.ndarray, n_leads: int) -> np.ndarray:
    """(T, H, W) mm/h -> (n_leads, H, W): the last frame as it is, NaN included (pysteps'
    "eulerian")."""
    context = check_context(context_mmh, n_leads, min_frames=1)
    return _persistence(context, n_leads)


def extrapolation(context_mmh: np.ndarray, n_leads: int) -> np.ndarray:
    """(T, H, W) mm/h -> (n_leads, H, W): the last frame advected semi-Lagrangian along the
    context's Lucas-Kanade motion; NaN only outside the last frame's domain."""
    context = check_context(context_mmh, n_leads, min_frames=2)
    context_db = to_db(context)
    return _extrapolation(context, context_db, lucas_kanade_db(context_db), n_leads)


def sprog(context_mmh: np.ndarray, n_leads: int) -> np.ndarray:
    """(T >= 3, H, W) mm/h -> (n_leads, H, W): pysteps' S-PROG (6 cascade levels, AR(2), in dB
    above -10 dB); deterministic, so no seed. NaN only outside the last frame's domain."""
    context = check_context(context_mmh, n_leads, min_frames=SPROG_AR_ORDER + 1)
    context_db = to_db(context)
    return _sprog(context, context_db, lucas_kanade_db(context_db), n_leads)


def radar_baselines(
    context_mmh: np.ndarray, n_leads: int, velocity: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Every name in `BASELINE_NAMES` -> its (n_leads, H, W) mm/h nowcast, with one motion
    field shared by extrapolation and S-PROG (`velocity`, `motion_field`'s, where the caller
    has it already)."""
    context = check_context(context_mmh, n_leads, min_frames=SPROG_AR_ORDER + 1)
    context_db = to_db(context)
    if velocity is None:
        velocity = lucas_kanade_db(context_db)
    return {
        "persistence": _persistence(context, n_leads),
        "extrapolation": _extrapolation(context, context_db, velocity, n_leads),
        "sprog": _sprog(context, context_db, velocity, n_leads),
    }
