"""DVC stage `preprocess`: the deterministic train/val/test split of the fetched windows, by
clip for a folder and by event for a radar archive (each of `data.radar.archives` with its own
test windows, in a folder), kept uint8, with a manifest of digests."""

from __future__ import annotations

from nextframe import cli
from nextframe.data.source import SplitPaths, index_folder
from nextframe.data.sources import get_source
from nextframe.io import load_json, remove_outputs
from nextframe.params import load_params


def main() -> None:
    args = cli.stage_args(
        __doc__,
        "params",
        "windows",
        "archives",
        "digits",
        "info",
        "train",
        "val",
        "test",
        "test_archives",
        "train_digits",
        "manifest",
    )
    params = load_params(args.params)
    info = load_json(args.info)
    splits = {"train": args.train, "val": args.val, "test": args.test}
    paths = SplitPaths(
        args.windows,
        args.digits,
        splits,
        args.train_digits,
        args.manifest,
        args.archives,
        args.test_archives,
    )
    source = get_source(params.data.source)
    outputs = (*splits.values(), args.test_archives, args.train_digits, args.manifest)
    summary = source.split(params, info, paths, lambda: remove_outputs(*outputs))
    index_folder(args.test_archives)
    print(f"preprocess: {summary}")


if __name__ == "__main__":
    cli.run(main)
