"""`nextframe predict` for a radar model: the latest frames of an archive (pysteps' layout) in,
the nowcast in mm/h out (`.npy`, NaN outside the domain), maps as a GIF and an MP4."""

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
    nowcast = predict_rain(model, context[None], horizon)[0]
    seconds = time.perf_counter() - started
    save_npy(npy_path, nowcast)
    maps = nowcast_sequence(context, nowcast, layout.timestep_minutes, MAP_SCALE)
    save_gif(gif_path, maps, FPS)
    even = maps[:, : maps.shape[1] // 2 * 2, : maps.shape[2] // 2 * 2]  # MPEG-4: even sizes
    written = [npy_path, gif_path, write_clip(video_path, even, FPS)]
    step = layout.timestep_minutes
    leads = f"+{step:g} to +{horizon * step:g} min"
    print(
        f"predict: {network} nowcast {leads} every {step:g} min after "
        f"{frames[-1].time:%Y-%m-%d %H:%M} ({n_context} frames given) in {seconds:.2f} s: "
        f"{', '.join(map(str, written))} (float32 mm/h {nowcast.shape}, NaN outside the domain)"
    )
