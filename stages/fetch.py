"""DVC stage `fetch`: windows (N, T, H, W, C) uint8 from `data.source` (generated Moving MNIST,
the real file, OpenSTL's protocol, a folder of your own clips or a weather-radar archive), the
digits fresh training sequences are drawn from, and what preprocess needs to split them."""

from __future__ import annotations

from nextframe import cli
from nextframe.data.folder import find_clips
from nextframe.data.sources import Fetched, fetch
from nextframe.io import remove_outputs, write_json
from nextframe.params import load_params


def main() -> None:
    args = cli.stage_args(
        __doc__, "params", "folder", "radar_root", "downloads", "windows", "digits", "info"
    )
    params = load_params(args.params)
    found = None
    if params.data.source == "folder":  # the folder is there and holds clips, before anything goes
        found = find_clips(args.folder, params.data.npz_members)
    remove_outputs(args.windows, args.digits, args.info)
    out = Fetched(args.windows, args.digits, args.downloads, args.radar_root)
    info, summary = fetch(params, args.folder, out, found)
    write_json(args.info, info)
    print(f"fetch: {summary}")


if __name__ == "__main__":
    cli.run(main)
