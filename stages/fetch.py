"""DVC stage `fetch`: windows (N, T, H, W, C) uint8 from `data.source` (generated Moving MNIST,
the real file, OpenSTL's protocol, a folder of your own clips or a weather-radar archive, and
the windows of `data.radar.archives` in a folder of their own), the digits fresh training
sequences are drawn from, and what preprocess needs to split them."""

from __future__ import annotations

from nextframe import cli
from nextframe.data.source import FetchPaths, index_folder
from nextframe.data.sources import get_source
from nextframe.io import remove_outputs, write_json
from nextframe.params import load_params


def main() -> None:
    args = cli.stage_args(
        __doc__,
        "params",
        "folder",
        "radar_root",
        "downloads",
        "windows",
        "archives",
        "digits",
        "info",
    )
    params = load_params(args.params)
    source = get_source(params.data.source)
    out = FetchPaths(args.windows, args.digits, args.downloads, args.radar_root, args.archives)
    outputs = (args.windows, args.archives, args.digits, args.info)
    info, summary = source.fetch(params, args.folder, out, lambda: remove_outputs(*outputs))
    index_folder(args.archives)
    write_json(args.info, info)
    print(f"fetch: {summary}")


if __name__ == "__main__":
    cli.run(main)
