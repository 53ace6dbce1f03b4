"""The video domain's renders: truth | prediction | error GIFs of picked test windows and a
still grid of them."""

from __future__ import annotations

import numpy as np

from nextframe.frames import to_unit


def render(model, windows, picked, params, manifest, gifs, grid):
    from nextframe.render import comparison_frames, grid_image, save_gif, save_png
    from nextframe.rollout import predict_future

    data, render = params.data, params.render
    sequences_uint8 = np.stack([windows[int(i)] for i in picked])[:, : data.n_frames]
    context = to_unit(sequences_uint8[:, : data.n_context])
    predicted = predict_future(model, context, data.horizon)
    gif_paths = []
    for index, truth, pred in zip(picked, sequences_uint8, predicted, strict=True):
        path = gifs / f"test_{index:05d}.gif"
        frames = comparison_frames(truth, pred, data.n_context, render.scale)
        save_gif(path, frames, render.fps)
        gif_paths.append(path)
    grid_scale = max(1, render.scale // 2)  # 20 columns: half the GIF scale stays on screen
    save_png(grid, grid_image(sequences_uint8, predicted, data.n_context, grid_scale))
    return [grid, *gif_paths]
