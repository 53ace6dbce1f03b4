"""Splitting the fetched windows into train, val and test, deterministically.

Moving MNIST keeps the generator's layout (test drawn from held-out digits) or, for the real
file, shuffles by `seed`; a folder is split by clip, each split its quota of the clips
(`nextframe.data.folder.split_of_clips`), so no window of a test clip is ever trained on.
"""

from __future__ import annotations

import hashlib

import numpy as np

from nextframe.data.folder import split_of_clips, window_indices
from nextframe.data.moving_mnist import SPLITS
from nextframe.errors import NextframeError
from nextframe.params import DataParams


def split_indices(
    n_total: int, counts: dict[str, int], seed: int, given_sizes: dict[str, int] | None
) -> dict[str, np.ndarray]:
    """Indices of each split, sorted for sequential reads.

    `given_sizes` is how the generator laid out its splits (train, val, test in order,
    test from held-out digits), which must be kept; a downloaded file has none and is
    shuffled from `seed` before cutting.
    """
    needed = sum(counts[s] for s in SPLITS)
    if given_sizes is not None:
        out, start = {}, 0
        for split in SPLITS:
            if counts[split] > given_sizes[split]:
                raise NextframeError(
                    f"data.n_{split} is {counts[split]} but the fetched data holds "
                    f"{given_sizes[split]} {split} sequences (run the fetch stage again)"
                )
            out[split] = np.arange(start, start + counts[split])
            start += given_sizes[split]
        return out
    if needed > n_total:
        raise NextframeError(
            f"data.n_train + data.n_val + data.n_test is {needed} but the fetched data "
            f"holds {n_total} sequences"
        )
    order = np.random.default_rng(seed).permutation(n_total)
    out, start = {}, 0
    for split in SPLITS:
        out[split] = np.sort(order[start : start + counts[split]])
        start += counts[split]
    return out


def sha256_of_array(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def split_windows(info: dict, n_windows: int, data: DataParams, seed: int) -> dict[str, np.ndarray]:
    """Each split's indices into the fetched windows, by what the fetch stage recorded."""
    if info["source"] != "folder":
        counts = {"train": data.n_train, "val": data.n_val, "test": data.n_test}
        return split_indices(n_windows, counts, seed, info.get("split_sizes"))
    clips = info["clips"]
    given = {clip["name"]: clip["split"] for clip in clips if clip["split"]}
    drawn = [clip for clip in clips if not clip["split"]]
    split_of = given | split_of_clips(drawn, seed, data.val_fraction, data.test_fraction)
    indices = window_indices(clips, split_of)
    for split in SPLITS:
        if len(indices[split]) == 0:
            if given:
                why = f"its {split}/ sub-folder holds no clip as long as a window"
            else:
                distinct = len({clip["sha256"] for clip in clips})
                why = (
                    f"{distinct} distinct clips are too few to split (3 or more give val and "
                    "test one each): add clips, or give train/, val/ and test/ sub-folders"
                )
            raise NextframeError(f"no clip of {info['folder']} falls into {split}: {why}")
    return indices


def clips_per_split(info: dict, indices: dict[str, np.ndarray]) -> dict[str, int]:
    """How many of a folder's clips each split holds (by their first windows)."""
    firsts = {clip["first_window"] for clip in info.get("clips", [])}
    return {split: len(firsts.intersection(indices[split].tolist())) for split in SPLITS}


def sha256_of_clip_list(clips: list[dict]) -> str:
    """One digest of a folder's clips: their names and contents, in order."""
    digest = hashlib.sha256()
    for clip in clips:
        digest.update(f"{clip['name']}\0{clip['sha256']}\n".encode())
    return digest.hexdigest()
