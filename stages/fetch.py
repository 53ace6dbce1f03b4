"""DVC stage `fetch`: Moving MNIST as (N, T, H, W) uint8, generated offline or downloaded."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from nextframe import cli
from nextframe.data.download import convert_real_layout, download
from nextframe.data.moving_mnist import SPLITS, generate_splits
from nextframe.io import remove_outputs, save_npy, write_json
from nextframe.params import load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="data/raw", type=Path)
    parser.add_argument(
        "--cache",
        default="data/download",
        type=Path,
        help="where the real file is kept between runs, so it is downloaded once",
    )
    args = parser.parse_args()
    params = load_params(args.params)
    data = params.data
    sequences_path, info_path = args.out / "sequences.npy", args.out / "info.json"
    remove_outputs(sequences_path, info_path)

    if data.source == "generated":
        counts = {"train": data.n_train, "val": data.n_val, "test": data.n_test}
        splits = generate_splits(
            params.seed,
            counts,
            test_digits_per_class=data.test_digits_per_class,
            n_frames=data.n_frames,
            frame_size=data.frame_size,
            digits_per_sequence=data.digits_per_sequence,
            step_length=data.step_length,
        )
        save_npy(sequences_path, np.concatenate([splits[s] for s in SPLITS]))
        info = {"source": "generated", "split_sizes": counts}
    else:
        real_file = download(data.url, args.cache / Path(data.url).name, md5=data.md5)
        convert_real_layout(real_file, sequences_path, data.n_frames)
        info = {"source": "download", "url": data.url, "md5": data.md5, "split_sizes": None}
    write_json(info_path, info)
    print(f"fetch: wrote {sequences_path} ({data.source})")


if __name__ == "__main__":
    cli.run(main)
