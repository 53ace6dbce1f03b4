"""DVC stage `render`: closed-loop GIFs (truth | prediction | error) and a PNG grid; for radar,
precipitation maps of the model beside pysteps' nowcasts, lead times in minutes."""

from __future__ import annotations

from nextframe import cli
from nextframe.data.windows import open_radar_windows, open_windows
from nextframe.errors import NextframeError
from nextframe.io import load_json, remove_outputs, require_file
from nextframe.ops.tracking import run_id_of
from nextframe.params import load_params


def main() -> None:
    args = cli.stage_args(
        __doc__, "params", "model", "test", "manifest", "run_info", "gifs", "grid"
    )
    params = load_params(args.params)
    data, render = params.data, params.render
    if data.is_radar:
        test_windows = open_radar_windows(args.test, data.n_frames)
        timestep_minutes = load_json(args.manifest)["radar"]["timestep_minutes"]
    else:
        test_windows = open_windows(args.test, data.n_frames, data.frame_size, data.channels)
    if render.n_sequences > len(test_windows):
        raise NextframeError(
            f"params.yaml: render.n_sequences must be <= the {len(test_windows)} test windows, "
            f"got {render.n_sequences}"
        )
    run_id = run_id_of(args.run_info)
    require_file(args.model, "model file")
    remove_outputs(args.gifs, args.grid)

    import numpy as np

    from nextframe.frames import to_unit
    from nextframe.model import load_predictor
    from nextframe.ops.tracking import log_renders
    from nextframe.render import comparison_frames, grid_image, save_gif, save_png
    from nextframe.rollout import predict_future

    model = load_predictor(args.model, frames_of=test_windows)
    rng = np.random.default_rng(params.seed)
    picked = np.sort(rng.choice(len(test_windows), render.n_sequences, replace=False))
    if data.is_radar:
        paths = render_radar(args, data, model, test_windows, picked, timestep_minutes)
        log_renders(run_id, paths)
        print(f"render: wrote {args.grid} and {len(paths) - 1} GIFs in {args.gifs}")
        return
    sequences_uint8 = np.stack([test_windows[int(i)] for i in picked])[:, : data.n_frames]
    context = to_unit(sequences_uint8[:, : data.n_context])
    predicted = predict_future(model, context, data.horizon)

    gif_paths = []
    for index, truth, pred in zip(picked, sequences_uint8, predicted, strict=True):
        path = args.gifs / f"test_{index:05d}.gif"
        save_gif(path, comparison_frames(truth, pred, data.n_context, render.scale), render.fps)
        gif_paths.append(path)
    grid_scale = max(1, render.scale // 2)  # 20 columns: half the GIF scale stays on screen
    save_png(args.grid, grid_image(sequences_uint8, predicted, data.n_context, grid_scale))
    log_renders(run_id, [args.grid, *gif_paths])
    print(f"render: wrote {args.grid} and {len(gif_paths)} GIFs in {args.gifs}")


def render_radar(args, data, model, test_windows, picked, timestep_minutes: float) -> list:
    """Precipitation maps on pysteps' colour scale: truth | ConvLSTM | extrapolation | S-PROG
    of each picked test window as a GIF, and a grid of the first at +5, +30 and +60 min."""
    from nextframe.nowcast import radar_baselines
    from nextframe.radar_render import nowcast_frames, nowcast_grid
    from nextframe.render import save_gif, save_png
    from nextframe.rollout import predict_rain

    scale = model.frames.rain
    gif_paths, grid = [], None
    for index in picked:
        rain = scale.decode_mmh(test_windows[int(index)][: data.n_frames, ..., 0])
        context, truth = rain[: data.n_context], rain[data.n_context :]
        baselines = radar_baselines(context, data.horizon)
        forecasts = {
            "ConvLSTM": predict_rain(model, context[None], data.horizon)[0],
            "extrapolation": baselines["extrapolation"],
            "S-PROG": baselines["sprog"],
        }
        path = args.gifs / f"test_{index:05d}.gif"
        frames = nowcast_frames(context, truth, forecasts, timestep_minutes, RADAR_MAP_SCALE)
        save_gif(path, frames, RADAR_FPS)
        gif_paths.append(path)
        if grid is None:
            leads = [
                step
                for step in (1, round(30 / timestep_minutes), round(60 / timestep_minutes))
                if 1 <= step <= data.horizon
            ]
            leads = sorted(set(leads)) or [data.horizon]
            grid = nowcast_grid(context, truth, forecasts, timestep_minutes, leads, RADAR_MAP_SCALE)
    save_png(args.grid, grid)
    return [args.grid, *gif_paths]


# A composite is drawn at half its pixels (a 640x710 map: 320x355 a panel), 2 frames a second.
RADAR_MAP_SCALE = 0.5
RADAR_FPS = 2


if __name__ == "__main__":
    cli.run(main)
