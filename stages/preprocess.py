"""DVC stage `preprocess`: the deterministic train/val/test split of the fetched windows, by
clip for a folder and by event for a radar archive, kept uint8, with a manifest of digests."""

from __future__ import annotations

from nextframe import cli
from nextframe.data.manifest import check_digits, write_splits
from nextframe.data.windows import open_windows
from nextframe.io import load_json, load_npy, remove_outputs
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
    data = params.data
    info = load_json(args.info)
    outputs = {"train": args.train, "val": args.val, "test": args.test}
    if data.is_radar:
        from nextframe.data.radar_windows import write_radar_splits
        from nextframe.data.windows import open_radar_windows

        windows = open_radar_windows(args.windows, data.n_frames)
        remove_outputs(*outputs.values(), args.train_digits, args.manifest)
        summary = write_radar_splits(
            params, windows, info, outputs, args.train_digits, args.manifest
        )
        print(f"preprocess: {summary}")
        return
    windows = open_windows(args.windows, data.n_frames, data.frame_size, data.channels)
    digits = check_digits(load_npy(args.digits, mmap=False), args.digits)
    remove_outputs(*outputs.values(), args.train_digits, args.manifest)
    summary = write_splits(params, windows, info, digits, outputs, args.train_digits, args.manifest)
    print(f"preprocess: {summary}")


if __name__ == "__main__":
    cli.run(main)
