"""DVC stage `render`: GIFs of picked test windows and a still grid, drawn by the model's
domain (`nextframe.domains`: video as truth | prediction | error; radar as precipitation maps
of the model beside pysteps' nowcasts, lead times in minutes)."""

from __future__ import annotations

from nextframe import cli
from nextframe.domains import get_method, get_part
from nextframe.errors import NextframeError
from nextframe.io import load_json, remove_outputs, require_file
from nextframe.ops.tracking import run_id_of
from nextframe.params import load_params


def main() -> None:
    args = cli.stage_args(
        __doc__, "params", "model", "test", "manifest", "run_info", "gifs", "grid"
    )
    params = load_params(args.params)
    domain = get_method(params.data.domain)
    test_windows = domain.open_windows(args.test, params.data)
    manifest = load_json(args.manifest)
    n_shown = params.render.n_sequences
    if n_shown > len(test_windows):
        raise NextframeError(
            f"params.yaml: render.n_sequences must be <= the {len(test_windows)} test windows, "
            f"got {n_shown}"
        )
    run_id = run_id_of(args.run_info)
    require_file(args.model, "model file")
    remove_outputs(args.gifs, args.grid)

    import numpy as np

    from nextframe.model import load_predictor
    from nextframe.ops.tracking import log_renders

    model = load_predictor(args.model, frames_of=test_windows)
    rng = np.random.default_rng(params.seed)
    picked = np.sort(rng.choice(len(test_windows), n_shown, replace=False))
    renderer = get_part(params.data.domain, "render")
    paths = renderer.render(model, test_windows, picked, params, manifest, args.gifs, args.grid)
    log_renders(run_id, paths)
    print(f"render: wrote {args.grid} and {len(paths) - 1} GIFs in {args.gifs}")


if __name__ == "__main__":
    cli.run(main)
