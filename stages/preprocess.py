"""DVC stage `preprocess`: deterministic train/val/test split, kept uint8, with a manifest."""

from __future__ import annotations

import json

import numpy as np

from nextframe import cli
from nextframe.data.moving_mnist import SPLITS
from nextframe.data.splits import (
    read_sequences,
    sha256_of_array,
    split_indices,
    validate_sequences,
)
from nextframe.errors import NextframeError
from nextframe.io import load_npy, remove_outputs, save_npy, write_json, write_npy_in_chunks
from nextframe.params import load_params


def main() -> None:
    args = cli.stage_args(__doc__, raw="data/raw", out="data/processed")
    params = load_params(args.params)
    data = params.data
    digits_out = args.out / "train_digits.npy"
    outputs = [args.out / f"{s}.npy" for s in SPLITS] + [digits_out, args.out / "manifest.json"]
    remove_outputs(*outputs)

    sequences_path = args.raw / "sequences.npy"
    sequences = load_npy(sequences_path)  # memory-mapped: only the header is read
    validate_sequences(sequences, sequences_path, data.n_frames, data.frame_size)
    try:
        info = json.loads((args.raw / "info.json").read_text())
    except (OSError, ValueError) as exc:
        raise NextframeError(f"{args.raw / 'info.json'}: unreadable ({exc})") from None
    counts = {"train": data.n_train, "val": data.n_val, "test": data.n_test}
    indices = split_indices(len(sequences), counts, params.seed, info.get("split_sizes"))

    manifest = {"source": info["source"], "splits": {}}
    for split in SPLITS:
        # Copied and hashed a chunk at a time: memory stays flat however large the split.
        shape = (len(indices[split]), data.n_frames, data.frame_size, data.frame_size)
        chunks = read_sequences(sequences_path, indices[split], data.n_frames)
        manifest["splits"][split] = {
            "count": shape[0],
            "shape": list(shape),
            "dtype": "uint8",
            "sha256": write_npy_in_chunks(args.out / f"{split}.npy", shape, chunks),
        }
    # The digits fresh training sequences are drawn from (empty for a downloaded file).
    train_digits = load_npy(args.raw / "train_digits.npy", mmap=False)
    if train_digits.dtype != np.uint8 or train_digits.ndim != 3:
        raise NextframeError(
            f"{args.raw / 'train_digits.npy'}: expected (N, 28, 28) uint8 digits, got "
            f"{train_digits.dtype} of shape {train_digits.shape}"
        )
    save_npy(digits_out, train_digits)
    manifest["train_digits"] = {
        "count": len(train_digits),
        "sha256": sha256_of_array(train_digits),
    }
    write_json(args.out / "manifest.json", manifest)
    print(f"preprocess: wrote {', '.join(str(p) for p in outputs)}")


if __name__ == "__main__":
    cli.run(main)
