"""pysteps' STEPS ensemble, the probabilistic baseline a learned ensemble is judged beside: the
last context frames as pysteps' MeteoSwiss example runs them (dB above -10 dB, 6 cascade
levels, AR(2), nonparametric noise, BPS motion perturbations, incremental mask, matched to the
last frame's distribution), seeded, on a grid of `STEPS_PIXEL_KM`.

Why upscaled: STEPS on the whole 640x710 MeteoSwiss composite at 1 km takes 66 s a window for
12 members and 12 leads on 2 cores, at 2 km 14 s (`benchmarks/steps_cost.py`), and pysteps'
own gallery runs it on that network at 2 km. Its members are brought back to the test grid
(each 2 km pixel repeated over the 1 km pixels it covers) and scored there, on the pixels and
against the truth every other nowcast is scored on.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from nextframe.domains.rain.ensemble_scores import EnsembleScores
from nextframe.domains.rain.nowcast import (
    RAIN_THRESHOLD_DB,
    SPROG_AR_ORDER,
    SPROG_CASCADE_LEVELS,
    RainScores,
    ScoreSpec,
    check_context,
    lucas_kanade_db,
    to_db,
    to_mmh,
)
from nextframe.errors import NextframeError
from nextframe.motion import pysteps, quiet
from nextframe.spectra import Spectra

STEPS_PIXEL_KM = 2.0
# pysteps' STEPS docstring: the BPS motion perturbations fitted for Lucas-Kanade motion, per
# network (MeteoSwiss, FMI), and on both for any other network.
LK_VELOCITY_PERTURBATIONS = {
    "mch": {
        "p_par": [2.56338484, 0.3330941, -2.99714349],
        "p_perp": [1.31204508, 0.3578426, -1.02499891],
    },
    "fmi": {
        "p_par": [2.20837526, 0.33887032, -2.48995355],
        "p_perp": [2.21722634, 0.32359621, -2.57402761],
    },
    "": {
        "p_par": [2.31970635, 0.33734287, -2.64972861],
        "p_perp": [1.90769947, 0.33446594, -2.06603662],
    },
}


@dataclass(frozen=True)
class EnsembleSpec:
    """An ensemble of `n_members` per window of `network`'s archive, on a grid of `pixel_km`
    (the test grid's), run on one of about `steps_pixel_km`."""

    n_members: int
    pixel_km: float
    timestep_minutes: float
    network: str = ""
    steps_pixel_km: float = STEPS_PIXEL_KM

    def upscaling(self) -> int:
        """How many test-grid pixels a STEPS pixel spans along each axis (1: none)."""
        return max(1, round(self.steps_pixel_km / self.pixel_km))


def window_seed(seed: int, archive: int, window: int) -> int:
    """One window's seed, the same in any process and worker order."""
    return int(np.random.SeedSequence((seed, archive, window)).generate_state(1)[0])


def block_mean(field_mmh: np.ndarray, factor: int) -> np.ndarray:
    """(..., H, W) -> (..., ceil(H/f), ceil(W/f)): the mean rain of each f x f block over its
    pixels with data, NaN where it has none (the edge blocks are the part inside the grid)."""
    if factor == 1:
        return np.asarray(field_mmh, dtype=np.float64)
    *lead, height, width = field_mmh.shape
    rows, cols = -(-height // factor), -(-width // factor)
    padded = np.full((*lead, rows * factor, cols * factor), np.nan)
    padded[..., :height, :width] = field_mmh
    blocks = padded.reshape(*lead, rows, factor, cols, factor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN block's mean is NaN
        return np.nanmean(blocks, axis=(-3, -1))


def repeated(field: np.ndarray, factor: int, height: int, width: int) -> np.ndarray:
    """`block_mean`'s grid back to (..., height, width): each block's value on its pixels."""
    if factor == 1:
        return field
    return np.repeat(np.repeat(field, factor, axis=-2), factor, axis=-1)[..., :height, :width]


def steps_ensemble(
    context_mmh: np.ndarray, n_leads: int, spec: EnsembleSpec, seed: int
) -> np.ndarray:
    """(T >= 3, H, W) mm/h -> (M, n_leads, H', W') mm/h on STEPS' grid (`spec.upscaling()`
    times coarser), NaN outside the last frame's domain there: pysteps' STEPS, seeded."""
    if spec.n_members < 2:
        raise NextframeError(f"STEPS: an ensemble needs 2 members or more, got {spec.n_members}")
    context = check_context(context_mmh, n_leads, min_frames=SPROG_AR_ORDER + 1)
    coarse = block_mean(context, spec.upscaling())
    coarse_db = to_db(coarse)
    velocity = lucas_kanade_db(coarse_db)
    with quiet():
        members_db = pysteps().nowcasts.get_method("steps")(
            coarse_db[-(SPROG_AR_ORDER + 1) :],
            velocity,
            n_leads,
            n_ens_members=spec.n_members,
            n_cascade_levels=SPROG_CASCADE_LEVELS,
            ar_order=SPROG_AR_ORDER,
            precip_thr=RAIN_THRESHOLD_DB,
            kmperpixel=spec.pixel_km * spec.upscaling(),
            timestep=spec.timestep_minutes,
            noise_method="nonparametric",
            vel_pert_method="bps",
            vel_pert_kwargs=LK_VELOCITY_PERTURBATIONS.get(
                spec.network, LK_VELOCITY_PERTURBATIONS[""]
            ),
            mask_method="incremental",
            probmatching_method="cdf",
            seed=seed,
            num_workers=1,
        )
    return np.stack([to_mmh(member, coarse[-1]) for member in members_db])


def scored_steps(
    context_mmh: np.ndarray,
    truth_mmh: np.ndarray,
    spec: ScoreSpec,
    ensemble: EnsembleSpec,
    seed: int,
    spectra: Spectra | None = None,
) -> tuple[EnsembleScores, RainScores]:
    """STEPS on one window, scored on the test grid against `truth_mmh` (L, H, W): its
    probabilistic scores, and its members' mean scored as any deterministic nowcast; its
    first member's power spectra added to `spectra` (`steps_member`) where given."""
    n_leads, height, width = truth_mmh.shape
    coarse = steps_ensemble(context_mmh, n_leads, ensemble, seed)
    factor = ensemble.upscaling()
    outside = np.isnan(context_mmh[-1])
    probabilistic = EnsembleScores(ensemble.n_members, n_leads, spec.thresholds_mmh)
    mean, first = np.empty(truth_mmh.shape), np.empty(truth_mmh.shape)
    for lead in range(n_leads):
        members = repeated(coarse[:, lead], factor, height, width)
        members[:, outside] = np.nan
        probabilistic.accumulate(lead, members, truth_mmh[lead])
        mean[lead], first[lead] = members.mean(axis=0), members[0]
    deterministic = RainScores(spec, n_leads)
    deterministic.add(mean, truth_mmh)
    if spectra is not None:
        spectra.add("steps_member", first)
    return probabilistic, deterministic
