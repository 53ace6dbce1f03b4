"""The field's probabilistic scores of a rain ensemble, per lead step, with pysteps'
accumulators (`pysteps.verification`): CRPS, the rank histogram, the reliability diagram and
ROC area of the exceedance probabilities at each threshold, and the ensemble's spread beside
its mean's error. What the radar issue on ensembles scores a learned ensemble and STEPS by;
accumulated window by window and merged across worker processes, as `RainScores` is.

A pixel is scored where the observation and every member have data: pysteps' CRPS, rank
histogram and reliability accumulators skip a NaN themselves; the exceedance probability
(`pysteps.postprocessing.ensemblestats.excprob`) and the spread are taken over those pixels
only, so a member's no-data area never reads as a member forecasting no rain.
"""

from __future__ import annotations

import contextlib
import copy
import zlib
from collections.abc import Iterator, Sequence

import numpy as np

from nextframe.errors import NextframeError
from nextframe.motion import pysteps

# What pysteps' accumulators add up, by score: summed when two accumulators merge.
_SUMMED = {
    "crps": ("CRPS_sum", "n"),
    "rankhist": ("n",),
    "reldiag": ("X_sum", "Y_sum", "num_idx", "sample_size"),
    "roc": ("hits", "misses", "false_alarms", "corr_neg"),
}


@contextlib.contextmanager
def _ties_drawn_from(values: np.ndarray) -> Iterator[None]:
    """pysteps' rank histogram breaks ties (the observation equal to several members) with
    numpy's global generator: seeded here from the window's own values, and restored after,
    so a score is the same in any process, and merged in any order."""
    state = np.random.get_state()
    np.random.seed(zlib.crc32(np.ascontiguousarray(values).tobytes()))
    try:
        yield
    finally:
        np.random.set_state(state)


class EnsembleScores:
    """Accumulates an ensemble of `n_members` forecasts against the observations, per lead.

    `thresholds_mmh`: where exceedance is scored (reliability, ROC area). `rank_min_mmh`:
    pysteps' rank histogram treats members and observation all below it as a tie broken at
    random, so the many dry pixels spread evenly over the ranks rather than pile up in one.
    """

    def __init__(
        self,
        n_members: int,
        n_leads: int,
        thresholds_mmh: Sequence[float],
        rank_min_mmh: float = 0.1,
    ) -> None:
        if n_members < 1 or n_leads < 1:
            raise NextframeError(
                f"ensemble scores: members and leads must be at least 1, got {n_members} "
                f"and {n_leads}"
            )
        probscores = pysteps().verification.probscores
        rankhist_init = pysteps().verification.ensscores.rankhist_init
        self.n_members, self.n_leads = n_members, n_leads
        self.thresholds_mmh = tuple(float(t) for t in thresholds_mmh)
        self._leads = [
            {
                "crps": probscores.CRPS_init(),
                "rankhist": rankhist_init(n_members, rank_min_mmh),
                "reldiag": {t: probscores.reldiag_init(t) for t in self.thresholds_mmh},
                "roc": {t: probscores.ROC_curve_init(t) for t in self.thresholds_mmh},
                "spread": np.zeros(3),  # sum of member variance, of squared mean error, pixels
            }
            for _ in range(n_leads)
        ]

    def accumulate(self, lead: int, members: np.ndarray, observed: np.ndarray) -> None:
        """Add one window's lead `lead` (0-based): `members` (M, H, W) and `observed` (H, W),
        mm/h, NaN where there is no data."""
        members = np.asarray(members, dtype=np.float64)
        observed = np.asarray(observed, dtype=np.float64)
        if members.shape != (self.n_members, *observed.shape):
            raise NextframeError(
                f"ensemble scores: expected members of shape ({self.n_members}, "
                f"{', '.join(map(str, observed.shape))}), got {members.shape}"
            )
        psv = pysteps().verification
        excprob = pysteps().postprocessing.ensemblestats.excprob
        valid = np.isfinite(observed) & np.all(np.isfinite(members), axis=0)
        forecast, truth = members[:, valid], observed[valid]
        scores = self._leads[lead]
        psv.probscores.CRPS_accum(scores["crps"], forecast, truth)
        with _ties_drawn_from(truth):
            psv.ensscores.rankhist_accum(scores["rankhist"], forecast, truth)
        for threshold in self.thresholds_mmh:
            probability = excprob(forecast[..., None], threshold)[..., 0]  # it takes (M, N, 1)
            psv.probscores.reldiag_accum(scores["reldiag"][threshold], probability, truth)
            psv.probscores.ROC_curve_accum(scores["roc"][threshold], probability, truth)
        if truth.size:
            mean = forecast.mean(axis=0)
            scores["spread"] += (
                forecast.var(axis=0, ddof=1).sum() if self.n_members > 1 else 0.0,
                np.square(mean - truth).sum(),
                truth.size,
            )

    def merge(self, other: EnsembleScores) -> EnsembleScores:
        """Both accumulators' sums in one (a worker's into this process's), a new object."""
        if (other.n_members, other.n_leads, other.thresholds_mmh) != (
            self.n_members,
            self.n_leads,
            self.thresholds_mmh,
        ):
            raise NextframeError("ensemble scores: only accumulators of one shape merge")
        merged = copy.deepcopy(self)
        for mine, theirs in zip(merged._leads, other._leads, strict=True):
            for name, keys in _SUMMED.items():
                pairs = (
                    [(mine[name], theirs[name])]
                    if name in ("crps", "rankhist")
                    else [(mine[name][t], theirs[name][t]) for t in self.thresholds_mmh]
                )
                for into, add in pairs:
                    for key in keys:
                        into[key] = into[key] + add[key]
            mine["spread"] = mine["spread"] + theirs["spread"]
        return merged

    def per_lead(self) -> list[dict]:
        """Each lead's scores: `crps` (mm/h), `rankhist` (M + 1 shares, summing to 1),
        `spread` and `rmse_of_mean` (mm/h: a calibrated ensemble's are alike), and per
        threshold `roc_area` and the reliability diagram (`reliability`: each probability
        bin's mean forecast probability and observed frequency, NaN where it has too few
        pixels, and its pixel count). NaN where nothing was scored."""
        psv = pysteps().verification
        rows = []
        for scores in self._leads:
            crps = scores["crps"]
            variance, squared, pixels = scores["spread"]
            ranks = scores["rankhist"]["n"]
            row = {
                "crps": psv.probscores.CRPS_compute(crps) if crps["n"] else float("nan"),
                "rankhist": (ranks / ranks.sum()).tolist() if ranks.sum() else [],
                "spread": float(np.sqrt(variance / pixels)) if pixels else float("nan"),
                "rmse_of_mean": float(np.sqrt(squared / pixels)) if pixels else float("nan"),
            }
            for threshold in self.thresholds_mmh:
                roc = scores["roc"][threshold]
                counted = roc["hits"][0] + roc["misses"][0]
                _, _, area = psv.probscores.ROC_curve_compute(roc, compute_area=True)
                row[f"roc_area_{threshold:g}"] = float(area) if counted else float("nan")
                reldiag = scores["reldiag"][threshold]
                forecast, observed = psv.probscores.reldiag_compute(reldiag)
                row[f"reliability_{threshold:g}"] = {
                    "forecast": np.asarray(forecast, dtype=float).tolist(),
                    "observed": np.asarray(observed, dtype=float).tolist(),
                    "count": reldiag["sample_size"].astype(int).tolist(),
                }
            rows.append(row)
        return rows
