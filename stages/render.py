"""DVC stage `render`: closed-loop GIFs (truth | prediction | error) and a PNG grid."""

from __future__ import annotations

import json

from nextframe import cli


def main() -> None:
    args = cli.stage_args(
        __doc__,
        model="models/model.keras",
        test="data/processed/test.npy",
        run_info="models/mlflow_run.json",
        gifs="renders/gifs",
        grid="renders/grid.png",
    )

    from nextframe.params import load_params

    params = load_params(args.params)

    import numpy as np

    from nextframe.io import load_npy, remove_outputs
    from nextframe.model import load_predictor
    from nextframe.ops.tracking import log_renders
    from nextframe.render import comparison_frames, grid_image, save_gif, save_png
    from nextframe.rollout import predict_future

    remove_outputs(args.gifs, args.grid)
    model = load_predictor(args.model)
    test_uint8 = load_npy(args.test)
    data, render = params.data, params.render
    picked = np.sort(
        np.random.default_rng(params.seed).choice(len(test_uint8), render.n_sequences, False)
    )
    sequences_uint8 = np.asarray(test_uint8[picked, : data.n_frames])
    predicted = predict_future(model, sequences_uint8[:, : data.n_context], data.horizon)[..., 0]

    gif_paths = []
    for index, truth, pred in zip(picked, sequences_uint8, predicted, strict=True):
        path = args.gifs / f"test_{index:05d}.gif"
        save_gif(path, comparison_frames(truth, pred, data.n_context, render.scale), render.fps)
        gif_paths.append(path)
    grid_scale = max(1, render.scale // 2)  # 20 columns: half the GIF scale stays on screen
    save_png(args.grid, grid_image(sequences_uint8, predicted, data.n_context, grid_scale))
    log_renders(json.loads(args.run_info.read_text())["run_id"], [args.grid, *gif_paths])
    print(f"render: wrote {args.grid} and {len(gif_paths)} GIFs in {args.gifs}")


if __name__ == "__main__":
    cli.run(main)
