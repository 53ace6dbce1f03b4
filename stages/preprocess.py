"""DVC stage `preprocess`: the deterministic train/val/test split of the fetched windows, by
clip for a folder and by event for a radar archive, kept uint8, with a manifest of digests."""

from __future__ import annotations

from nextframe import cli
from nextframe.data.source import SplitPaths
from nextframe.data.sources import get_source
from nextframe.io import load_json, remove_outputs
from nextframe.params import load_params


def main() -> None:
    args = cli.stage_args(
        __doc__,
        "params",
        "windows",
        "digits",
        "info",
        "train",
        "val",
        "test",
        "train_digits",
        "manifest",
    )
    params = load_params(args.params)
    info = load_json(args.info)
    splits = {"train": args.train, "val": args.val, "test": args.test}
    paths = SplitPaths(args.windows, args.digits, splits, args.train_digits, args.manifest)
    source = get_source(params.data.source)
    summary = source.split(
        params,
        info,
        paths,
        lambda: remove_outputs(*splits.values(), args.train_digits, args.manifest),
    )
    print(f"preprocess: {summary}")


if __name__ == "__main__":
    cli.run(main)
