"""DVC stage `render`: closed-loop GIFs (truth | prediction | error) and a PNG grid."""

from __future__ import annotations

from nextframe import cli
from nextframe.data.windows import open_windows
from nextframe.errors import NextframeError
from nextframe.io import remove_outputs, require_file
from nextframe.ops.tracking import run_id_of
from nextframe.params import load_params


def main() -> None:
    args = cli.stage_args(__doc__, "params", "model", "test", "run_info", "gifs", "grid")
    params = load_params(args.params)
    data, render = params.data, params.render
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

    from nextframe.frames import to_float_frames
    from nextframe.model import load_predictor
    from nextframe.ops.tracking import log_renders
    from nextframe.render import comparison_frames, grid_image, save_gif, save_png
    from nextframe.rollout import predict_future

    model = load_predictor(args.model, frames_of=test_windows)
    rng = np.random.default_rng(params.seed)
    picked = np.sort(rng.choice(len(test_windows), render.n_sequences, replace=False))
    sequences_uint8 = np.stack([test_windows[int(i)] for i in picked])[:, : data.n_frames]
    context = to_float_frames(sequences_uint8[:, : data.n_context])
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


if __name__ == "__main__":
    cli.run(main)
