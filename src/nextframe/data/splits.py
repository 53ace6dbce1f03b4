"""Splitting the fetched windows into train, val and test, deterministically.

Moving MNIST keeps the generator's layout (test drawn from held-out digits) or, for the real
file, shuffles by `seed`; a folder is split by clip, each split its quota of the clips
(`split_of_clips`), clips that share frames together, so no frame of a test clip is ever
trained on.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from nextframe.errors import NextframeError
from nextframe.params import DataParams

# Every source's splits, in the order generated Moving MNIST lays them out.
SPLITS = ("train", "val", "test")


def split_counts(data: DataParams) -> dict[str, int]:
    """How many sequences each split of Moving MNIST holds, as params say."""
    return {"train": data.n_train, "val": data.n_val, "test": data.n_test}


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


def split_quotas(n_clips: int, val_fraction: float, test_fraction: float) -> dict[str, int]:
    """How many clips val and test get: ceil(fraction x clips) each, at least one each where
    there are 3 clips or more, and never so many that train is left none."""
    quotas = {
        "val": math.ceil(val_fraction * n_clips - 1e-9),
        "test": math.ceil(test_fraction * n_clips - 1e-9),
    }
    if n_clips >= 3:
        quotas = {split: max(1, n) for split, n in quotas.items()}
    while quotas["val"] + quotas["test"] > max(0, n_clips - 1):
        larger = "val" if quotas["val"] >= quotas["test"] else "test"
        quotas[larger] -= 1
    return {"train": n_clips - quotas["val"] - quotas["test"], **quotas}


def split_of_clips(
    clips: list[dict], seed: int, val_fraction: float, test_fraction: float
) -> dict[str, str]:
    """Each clip's split, by name: the clips' groups (fetch's `group`: clips sharing a frame
    or their content are one, keyed by a content sha256) are ranked by a hash of `seed` and
    their key, the first `test` quota of the ranking is test, the last `val` quota val, and the
    rest, between them, train (`split_quotas`, which counts groups). A group shares a split.

    Adding a clip that joins no group moves at most one other while the quotas stay (it takes
    a place in the ranking, and at most one group crosses the border next to it); one that
    raises a quota (once every 1/fraction groups) moves at most one more. No split can promise
    fewer: when both quotas grow by one and the new clip ranks in train, two must leave it."""
    groups = sorted({clip["group"] for clip in clips}, key=lambda key: _rank(seed, key))
    quotas = split_quotas(len(groups), val_fraction, test_fraction)
    first_val = len(groups) - quotas["val"]
    split_of_group = {
        key: "test" if i < quotas["test"] else "val" if i >= first_val else "train"
        for i, key in enumerate(groups)
    }
    return {clip["name"]: split_of_group[clip["group"]] for clip in clips}


def _rank(seed: int, key: str) -> tuple[bytes, str]:
    return hashlib.sha256(f"{seed}:{key}".encode()).digest(), key


def window_indices(clips: list[dict], split_of: dict[str, str]) -> dict[str, np.ndarray]:
    """Each split's window indices in the raw file, clip by clip in name order."""
    out: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for clip in clips:
        first = clip["first_window"]
        out[split_of[clip["name"]]].append(np.arange(first, first + clip["windows"]))
    return {s: np.concatenate(v) if v else np.zeros(0, np.int64) for s, v in out.items()}


def split_windows(info: dict, n_windows: int, data: DataParams, seed: int) -> dict[str, np.ndarray]:
    """Each split's indices into the fetched windows, by what the fetch stage recorded."""
    if info["source"] != "folder":
        return split_indices(n_windows, split_counts(data), seed, info.get("split_sizes"))
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
                distinct = len({clip["group"] for clip in clips})
                why = (
                    f"{distinct} distinct clips are too few to split (clips sharing a frame "
                    "count as one; 3 or more give val and test one each): add clips, or give "
                    "train/, val/ and test/ sub-folders"
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
