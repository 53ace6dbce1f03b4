"""The model's own ensemble: pysteps' STEPS perturbations grown around the network's forecast,
as STEPS grows them around extrapolation.

The network runs once; its members differ by what STEPS would add where it has no skill left.
In the frame of the moving rain (or the radar's, for an Eulerian model) the network's field is
split into the cascade levels S-PROG uses, and each level keeps at most the share of the
context's variance that its lag-1 autocorrelation carries to that lead (rho^k, STEPS'
deterministic part): detail the network draws beyond what is predictable goes. Each member is
that field plus noise with the last observed frame's spatial structure (pysteps'
nonparametric FFT filter), per level an AR(1) in time with the level's autocorrelation,
growing as that correlation decays with lead time (small scales first, large ones last), to
the level's share of the rain's variance, scaled as STEPS scales it for noise cut to where it
rains (`noise_level_stds`: no constant fitted to one network). A Lagrangian model's
members are then carried along the motion, each with its own BPS perturbation (pysteps'
fitted parameters for Lucas-Kanade on the network, twice as large:
`MOTION_PERTURBATION_GAIN`): that is a uniform vector, so a member
follows the shared trajectories (found once) shifted by the sum of its own. Every lead is
then matched to the last frame's rain distribution, as STEPS' members are (`probmatching`
cdf): each member has the observed wet area and intensities, so none is the blurred mean.

Seeded per window: the same seed gives the same members in any process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from nextframe.domains.rain.ensemble import LK_VELOCITY_PERTURBATIONS, EnsembleSpec
from nextframe.domains.rain.lagrangian import displacements, match_distribution, warped
from nextframe.domains.rain.nowcast import SPROG_CASCADE_LEVELS
from nextframe.errors import NextframeError
from nextframe.motion import pysteps, quiet

# A level's lag-1 autocorrelation is kept below this: a level with no change in the context
# still gets a little noise, growing with lead time.
MAX_LEVEL_CORRELATION = 0.999
# How far a member's motion strays: this many times pysteps' BPS perturbation fitted for STEPS
# (`LK_VELOCITY_PERTURBATIONS`). With the fitted size (1) the members were too alike from 30
# minutes on, as STEPS' own are: on the held-out MeteoSwiss event the truth fell outside every
# member at 14 % / 25 % of pixels (below / above) at 60 minutes, and spread over the mean's
# error was 0.49 at 30 minutes; twice the size gave a lower CRPS at every lead there and on
# FMI's events, which the model never saw (README, "Nowcasts with their uncertainty").
MOTION_PERTURBATION_GAIN = 2.0
# How many noise fields `noise_level_stds` averages per window (pysteps' STEPS takes 20). On a
# MeteoSwiss composite (640x710) 10 give each level's std within 3 % of what 40 give at the five
# finer levels and 10 % at the coarsest, in 0.9 s (40: 3.2 s).
NOISE_ADJUSTMENT_FIELDS = 10
# Model values above this are rain: dry is exactly 0 (`RainScale`), rain starts at the
# threshold's value, well above.
RAIN_FLOOR = 1e-6


def member_seed(seed: int, archive: int, window: int) -> int:
    """One window's seed for the model's members (a stream apart from STEPS' `window_seed`)."""
    return int(np.random.SeedSequence((seed, archive, window, 1)).generate_state(1)[0])


def _cascade(field: np.ndarray, bandpass: dict, normalize: bool = True) -> dict:
    """pysteps' FFT cascade of `field`: its levels normalised with their stats, or as they are."""
    with quiet():
        return pysteps().cascade.decomposition.decomposition_fft(
            field, bandpass, normalize=normalize, compute_stats=normalize
        )


def level_statistics(context: np.ndarray, bandpass: dict) -> tuple[np.ndarray, np.ndarray]:
    """(T >= 2, H, W) NaN-free context in model values (in the frame the network predicts in)
    -> each cascade level's standard deviation in the last frame and its lag-1 autocorrelation
    between the last two frames, clipped to [0, MAX_LEVEL_CORRELATION]."""
    last, before = _cascade(context[-1], bandpass), _cascade(context[-2], bandpass)
    stds = np.asarray(last["stds"], dtype=np.float64)
    correlations = np.empty(len(stds))
    for level, (now, then) in enumerate(
        zip(last["cascade_levels"], before["cascade_levels"], strict=True)
    ):
        with np.errstate(invalid="ignore"):
            value = np.corrcoef(now.ravel(), then.ravel())[0, 1]
        correlations[level] = value if np.isfinite(value) else 0.0
    return stds, np.clip(correlations, 0.0, MAX_LEVEL_CORRELATION)


def predictable_share(
    forecast: np.ndarray, bandpass: dict, stds: np.ndarray, correlations: np.ndarray
) -> np.ndarray:
    """(L, H, W) fields -> each lead k's cascade levels scaled down, where larger, to the
    level's context std times rho^k: the variance an AR(1) of the context's autocorrelation
    still predicts at that lead (STEPS' deterministic part); the rest of the field as it was."""
    out = np.empty(forecast.shape, dtype=np.float32)
    for lead, field in enumerate(forecast):
        levels = np.asarray(_cascade(field, bandpass, normalize=False)["cascade_levels"])
        have = levels.std(axis=(1, 2))
        keep = stds * correlations ** (lead + 1)
        factors = np.minimum(1.0, keep / np.maximum(have, 1e-12))
        out[lead] = field + np.tensordot(factors - 1.0, levels, axes=1)
    return out


def noise_level_stds(
    last: np.ndarray, bandpass: dict, structure: dict, seed: int, otherwise: np.ndarray
) -> np.ndarray:
    """Per cascade level, the std a member's noise grows to once the level has no skill left:
    the level's std inside the rain of `last` (H, W; model values, NaN-free), scaled as
    pysteps' STEPS scales its noise for being cut to where it rains
    (`noise.utils.compute_noise_stddev_adjs`, conditional: `noise_stddev_adj="auto"`).
    `otherwise` where the rain has no spread of values to measure (none, or all one value).

    Taken over the whole composite, a fine level's std is mostly the rain's edges against dry
    ground, which every member gets again from its matched wet area: noise that large put a
    texture inside the rain that it lacks (members 8.8 dB over the truth's power at 2-16 km
    at 60 minutes on MeteoSwiss' winter rain), and a constant damping fitted to that left
    FMI's summer showers 12.6 dB under. Measured inside the rain and adjusted for the cut,
    with nothing fitted: 3.1 dB over on MeteoSwiss' and 2.0 dB under on FMI's, rank
    histograms near flat on both (README, "Nowcasts with their uncertainty")."""
    rain = np.asarray(last, dtype=np.float64)
    wet = rain > RAIN_FLOOR
    if wet.sum() < 2 or rain[wet].min() == rain[wet].max():
        return otherwise
    ps = pysteps()
    decompose = ps.cascade.decomposition.decomposition_fft
    with quiet():
        inside = decompose(np.where(wet, rain, 0.0) - rain[wet].mean(), bandpass, mask=wet)
        adjustments = ps.noise.utils.compute_noise_stddev_adjs(
            rain,
            RAIN_FLOOR,
            0.0,
            bandpass,
            decompose,
            structure,
            ps.noise.fftgenerators.generate_noise_2d_fft_filter,
            NOISE_ADJUSTMENT_FIELDS,
            conditional=True,
            seed=seed,
        )
    stds = np.asarray(inside["stds"]) * np.asarray(adjustments)
    return np.where(np.isfinite(stds), stds, otherwise)


def grown_noise(
    structure: dict,
    bandpass: dict,
    stds: np.ndarray,
    correlations: np.ndarray,
    n_leads: int,
    seed: int,
) -> np.ndarray:
    """(n_leads, H, W) perturbations for one member: noise of the spatial `structure` (pysteps'
    FFT filter), per cascade level (`bandpass`) an AR(1) in time with that level's
    `correlations`, scaled at lead k to the level's `stds` times sqrt(1 - rho^(2k))."""
    noise = pysteps().noise.fftgenerators
    random = np.random.RandomState(seed)
    height, width = bandpass["shape"]
    out = np.empty((n_leads, height, width), dtype=np.float32)
    state = None
    weights = np.sqrt(1.0 - correlations**2)[:, None, None]
    for lead in range(n_leads):
        white = noise.generate_noise_2d_fft_filter(structure, randstate=random)
        levels = np.asarray(_cascade(white, bandpass)["cascade_levels"])
        state = levels if state is None else correlations[:, None, None] * state + weights * levels
        grown = stds * np.sqrt(1.0 - correlations ** (2 * (lead + 1)))
        out[lead] = np.tensordot(grown, state, axes=1)
    return out


def bps_shifts(velocity: np.ndarray, n_leads: int, spec: EnsembleSpec, seed: int) -> np.ndarray:
    """(n_leads, 2): one member's BPS motion perturbation (pysteps' `noise.motion`, as STEPS
    perturbs its motion, `MOTION_PERTURBATION_GAIN` times as large), a uniform vector (x, y)
    in pixels per step at each lead, summed into how far the member's rain has moved off the
    unperturbed trajectories by that lead."""
    motion = pysteps().noise.motion
    fitted = LK_VELOCITY_PERTURBATIONS.get(spec.network, LK_VELOCITY_PERTURBATIONS[""])
    perturbator = motion.initialize_bps(
        velocity,
        1.0 / spec.pixel_km,
        spec.timestep_minutes,
        randstate=np.random.RandomState(seed),
        **fitted,
    )
    per_step = [
        motion.generate_bps(perturbator, (lead + 1) * spec.timestep_minutes).mean(axis=(1, 2))
        for lead in range(n_leads)
    ]
    return MOTION_PERTURBATION_GAIN * np.cumsum(per_step, axis=0)


def members_around(
    forecast: np.ndarray,
    context: np.ndarray,
    last_observed: np.ndarray,
    velocity: np.ndarray | None,
    spec: EnsembleSpec,
    seed: int,
) -> np.ndarray:
    """One window's members (M, L, H, W) in model values, NaN-free, in the radar's frame.

    `forecast` (L, H, W): the network's fields in the frame it predicts in (the rain's, where
    `velocity` (2, H, W) is given, else the radar's); `context` (T, H, W) NaN-free in that
    frame; `last_observed` (H, W): the last context frame as observed (NaN outside the domain),
    whose distribution every lead of every member takes."""
    if spec.n_members < 2:
        raise NextframeError(f"an ensemble needs 2 members or more, got {spec.n_members}")
    n_leads = len(forecast)
    bandpass = pysteps().cascade.bandpass_filters.filter_gaussian(
        forecast.shape[1:], SPROG_CASCADE_LEVELS
    )
    stds, correlations = level_statistics(context, bandpass)
    with quiet():
        structure = pysteps().noise.fftgenerators.initialize_nonparam_2d_fft_filter(context[-1])
    seeds = np.random.SeedSequence(seed).generate_state(2 * spec.n_members + 1)
    noise_stds = noise_level_stds(context[-1], bandpass, structure, int(seeds[-1]), stds)
    paths = None if velocity is None else displacements(velocity, n_leads)
    predictable = predictable_share(forecast, bandpass, stds, correlations)
    members = np.empty((spec.n_members, *forecast.shape), dtype=np.float32)
    for member in range(spec.n_members):
        noise = grown_noise(
            structure, bandpass, noise_stds, correlations, n_leads, int(seeds[2 * member])
        )
        fields = predictable + noise
        if paths is not None:
            shifts = bps_shifts(velocity, n_leads, spec, int(seeds[2 * member + 1]))
            fields = np.stack(
                [warped(f, d, s) for f, d, s in zip(fields, paths, shifts, strict=True)]
            )
            fields = np.nan_to_num(fields, nan=0.0)  # inflow from beyond the grid is dry
        members[member] = match_distribution(fields, last_observed)
    return members


def grown_around(spec: EnsembleSpec, seeds: Sequence[int]) -> Callable[..., np.ndarray]:
    """`members_around` as `forecast.predict_rain` grows members: window i seeded with
    `seeds[i]`."""

    def grow(forecast, context, last_observed, velocity, window: int) -> np.ndarray:
        return members_around(forecast, context, last_observed, velocity, spec, int(seeds[window]))

    return grow
