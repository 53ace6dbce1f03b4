"""The preprocess stage's work: each split's windows copied out a chunk at a time, and a
manifest of what they are (counts, shapes, sha256 digests, the dataset's name and digest for
tracking), so later stages can check what they read and a backup knows its data.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nextframe.data.moving_mnist import DIGIT_SIZE
from nextframe.data.splits import (
    SPLITS,
    clips_per_split,
    sha256_of_array,
    sha256_of_clip_list,
    split_windows,
)
from nextframe.data.windows import WindowFile, open_windows
from nextframe.errors import NextframeError
from nextframe.io import load_json, load_npy, save_npy, write_json, write_npy_in_chunks
from nextframe.params import Params

if TYPE_CHECKING:
    from nextframe.data.source import SplitPaths


def check_digits(digits: np.ndarray, path: Path) -> np.ndarray:
    """The training digits (N, 28, 28) uint8 (N may be 0), or one line saying what is wrong."""
    if digits.dtype != np.uint8 or digits.ndim != 3 or digits.shape[1:] != (DIGIT_SIZE,) * 2:
        raise NextframeError(
            f"{path}: expected (N, {DIGIT_SIZE}, {DIGIT_SIZE}) uint8 digits, got {digits.dtype} "
            f"of shape {digits.shape}"
        )
    return digits


def split_fetched(
    params: Params, info: dict, paths: SplitPaths, clear_outputs: Callable[[], None]
) -> str:
    """Preprocess for windows of `data.frame_size` squared (Moving MNIST, a folder's clips):
    the fetched windows and digits checked before `clear_outputs`, then `write_splits`."""
    data = params.data
    windows = open_windows(paths.windows, data.n_frames, data.frame_size, data.channels)
    digits = check_digits(load_npy(paths.digits, mmap=False), paths.digits)
    clear_outputs()
    return write_splits(
        params, windows, info, digits, paths.splits, paths.train_digits, paths.manifest
    )


def write_splits(
    params: Params,
    windows: WindowFile,
    info: dict,
    digits: np.ndarray,
    outputs: dict[str, Path],
    digits_out: Path,
    manifest_out: Path,
) -> str:
    """Write each split's windows to `outputs[split]`, the digits and the manifest; a summary."""
    indices = split_windows(info, len(windows), params.data, params.seed)
    manifest: dict = {"source": info["source"], "splits": {}}
    for split in SPLITS:
        shape = (len(indices[split]), *windows.shape[1:])
        chunks = windows.chunks(indices[split])
        manifest["splits"][split] = {
            "count": shape[0],
            "shape": list(shape),
            "dtype": "uint8",
            "sha256": write_npy_in_chunks(outputs[split], shape, chunks),
        }
    save_npy(digits_out, digits)
    manifest["train_digits"] = {"count": len(digits), "sha256": sha256_of_array(digits)}
    manifest["dataset"] = _dataset(info, indices, manifest, outputs["train"])
    write_json(manifest_out, manifest)
    clips = manifest["dataset"].get("clips", {})
    return ", ".join(
        f"{split} {manifest['splits'][split]['count']} windows"
        + (f" ({clips[split]} clips)" if clips else "")
        for split in SPLITS
    )


def _dataset(info: dict, indices: dict, manifest: dict, train_path: Path) -> dict:
    """What the train stage records as its MLflow dataset (unless it draws fresh sequences): a
    folder by name, the digest of its clips (names and contents) and the clips and windows of
    each split; Moving MNIST by the train split's digest."""
    if info["source"] == "folder":
        return {
            "name": Path(info["folder"]).name,
            "source": info["folder"],
            "digest": sha256_of_clip_list(info["clips"]),
            "clips": clips_per_split(info, indices),
            "windows": {split: len(indices[split]) for split in SPLITS},
        }
    return {
        "name": "moving_mnist_train",
        "source": str(train_path),
        "digest": manifest["splits"]["train"]["sha256"],
    }


def load_manifest(path: Path) -> dict:
    """The preprocess manifest, checked to hold what later stages read from it."""
    manifest = load_json(path)
    try:
        for split in SPLITS:
            manifest["splits"][split]["sha256"]
        manifest["dataset"]["name"]
    except (KeyError, TypeError):
        raise NextframeError(f"{path}: not a preprocess manifest (run preprocess again)") from None
    return manifest
