"""`nextframe predict` for a radar model: the latest frames of an archive (pysteps' layout) in,
the nowcast in mm/h out (`.npy`, NaN outside the domain), maps as a GIF and an MP4; with
`--members`, an ensemble grown around it (`nextframe.domains.rain.perturbed`), also as
CF NetCDF with its exceedance probabilities, and a GIF of the probabilities."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nextframe.data.radar import layout_overrides
from nextframe.errors import NextframeError
from nextframe.frames import FrameFormat
from nextframe.predicting import context_length, output_paths, params_here


def radar_settings(args: argparse.Namespace, frames: FrameFormat) -> tuple[str, dict, int]:
    """The network, layout overrides and context length: the arguments', else those of the
    pipeline's params.yaml (when it names a radar source), else the defaults."""
    params = params_here()
    radar = params.data.radar if params is not None else None
    network = args.network or (radar.network if radar is not None else None)
    if network is None:
        raise NextframeError("a radar model needs --network (a pysteps data source, e.g. mch)")
    overrides: dict = {}
    if radar is not None and network == radar.network:
        overrides = layout_overrides(radar)
    return network, overrides, context_length(args.context, frames)


DEFAULT_THRESHOLDS = (0.5, 1.0, 5.0, 10.0)  # without a pipeline's params.yaml


def ensemble_settings(args: argparse.Namespace, scale) -> tuple[int | None, tuple[float, ...]]:
    """`--members` checked, and the thresholds its probabilities are given at (params.yaml's
    evaluate.thresholds, else the defaults), each within what the model's rain scale holds."""
    from nextframe.domains.rain.render import MAPPED_THRESHOLDS
    from nextframe.params import MAX_ENSEMBLE_MEMBERS

    members = getattr(args, "members", None)
    if members is None:
        return None, ()
    if not 2 <= members <= MAX_ENSEMBLE_MEMBERS:
        raise NextframeError(f"--members must be 2 to {MAX_ENSEMBLE_MEMBERS}, got {members}")
    params = params_here()
    thresholds = tuple(params.evaluate.thresholds) if params is not None else DEFAULT_THRESHOLDS
    for threshold in sorted({*thresholds, *MAPPED_THRESHOLDS}):
        if not scale.threshold_mmh <= threshold <= scale.max_mmh:
            raise NextframeError(
                f"evaluate.thresholds: a probability of >= {threshold:g} mm/h is outside the "
                f"model's rain scale ({scale.threshold_mmh:g} to {scale.max_mmh:g} mm/h)"
            )
    return members, thresholds


def predict_files(args: argparse.Namespace, fmt: FrameFormat, load_model) -> None:
    """A radar model: the latest frames of an archive (or those up to --start) in, the next
    frames in mm/h out (`.npy`, NaN outside the domain), maps as a GIF and an MP4."""
    from datetime import datetime

    from nextframe.data.radar import latest_context

    end = None
    if args.start is not None:
        try:
            end = datetime.strptime(args.start, "%Y%m%d%H%M")
        except ValueError:
            raise NextframeError(f"--start must be YYYYmmddHHMM, got {args.start!r}") from None
    if not args.clip.is_dir():
        raise NextframeError(f"{args.clip}: not a folder of radar files or a radar archive")
    network, overrides, n_context = radar_settings(args, fmt)
    n_members, thresholds = ensemble_settings(args, fmt.rain)
    context, frames, layout = latest_context(args.clip, network, overrides, n_context, end)
    npy_path, gif_path, video_path = output_paths(
        Path(f"{network}_{frames[-1].time:%Y%m%d%H%M}"), args.out
    )

    from nextframe.data.export import write_clip
    from nextframe.domains.rain.forecast import predict_rain
    from nextframe.domains.rain.render import FPS, MAP_SCALE, nowcast_sequence
    from nextframe.io import save_npy
    from nextframe.render import save_gif

    model = load_model()
    horizon = args.horizon or model.horizon
    started = time.perf_counter()
    grow = None
    if n_members is not None:
        from nextframe.data.radar import read_rain_rate
        from nextframe.domains.rain.ensemble import EnsembleSpec
        from nextframe.domains.rain.perturbed import grown_around

        grid = read_rain_rate(frames[-1], layout)[1]
        spec = EnsembleSpec(n_members, grid.pixel_km, layout.timestep_minutes, network)
        grow = grown_around(spec, [args.seed])
    nowcast = predict_rain(model, context[None], horizon, members=grow)[0]
    seconds = time.perf_counter() - started
    shown = nowcast if grow is None else nowcast[0]
    maps = nowcast_sequence(context, shown, layout.timestep_minutes, MAP_SCALE)
    even = maps[:, : maps.shape[1] // 2 * 2, : maps.shape[2] // 2 * 2]  # MPEG-4: even sizes
    save_npy(npy_path, nowcast)
    save_gif(gif_path, maps, FPS)
    written = [npy_path, gif_path, write_clip(video_path, even, FPS)]
    if grow is not None:
        written += _ensemble_files(npy_path, nowcast, thresholds, grid, frames[-1].time, layout)
    step = layout.timestep_minutes
    leads = f"+{step:g} to +{horizon * step:g} min"
    what = "nowcast" if grow is None else f"{n_members}-member ensemble (seed {args.seed})"
    shown_as = "" if grow is None else "; the GIF and MP4 show its first member"
    print(
        f"predict: {network} {what} {leads} every {step:g} min after "
        f"{frames[-1].time:%Y-%m-%d %H:%M} ({n_context} frames given) in {seconds:.2f} s: "
        f"{', '.join(map(str, written))} (float32 mm/h {nowcast.shape}, NaN outside the "
        f"domain{shown_as})"
    )


def _ensemble_files(npy_path, members, thresholds, grid, last_observed, layout) -> list:
    """The ensemble's NetCDF (members and probabilities) and its probability GIF."""
    from nextframe.domains.rain.export import write_ensemble_netcdf
    from nextframe.domains.rain.render import FPS, probability_maps
    from nextframe.render import save_gif

    netcdf = write_ensemble_netcdf(
        npy_path.with_suffix(".nc"),
        members,
        thresholds,
        grid,
        last_observed,
        layout.timestep_minutes,
    )
    gif = npy_path.with_name(f"{npy_path.stem}_probability.gif")
    save_gif(gif, probability_maps(members, layout.timestep_minutes), FPS)
    return [netcdf, gif]
