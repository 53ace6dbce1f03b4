"""Checking raw sequences and splitting them deterministically, uint8 throughout."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from nextframe.data.moving_mnist import SPLITS
from nextframe.errors import NextframeError
from nextframe.io import load_npy, read_into

# ~5 MB of 20-frame 64x64 uint8 sequences: preprocess memory stays flat however big the file.
SEQUENCES_PER_CHUNK = 64


def validate_sequences(
    sequences: np.ndarray, source: str | Path, n_frames: int, frame_size: int
) -> None:
    """Refuse anything but (N, >= n_frames, frame_size, frame_size) uint8, with one line."""
    expected = f"(N, {n_frames}, {frame_size}, {frame_size}) uint8"
    if sequences.dtype != np.uint8:
        raise NextframeError(f"{source}: expected {expected}, got dtype {sequences.dtype}")
    if sequences.ndim != 4:
        raise NextframeError(f"{source}: expected {expected}, got shape {sequences.shape}")
    n, t, h, w = sequences.shape
    if n == 0 or t < n_frames or (h, w) != (frame_size, frame_size):
        raise NextframeError(f"{source}: expected {expected}, got shape {sequences.shape}")
    if not sequences.flags.c_contiguous:
        raise NextframeError(f"{source}: expected {expected} in C order, got Fortran order")


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


def read_sequences(
    path: str | Path,
    indices: np.ndarray,
    n_frames: int,
    chunk_sequences: int = SEQUENCES_PER_CHUNK,
) -> Iterator[np.ndarray]:
    """Yield `sequences[indices, :n_frames]` of the validated .npy at `path`, in chunks.

    Plain file reads, not a memory map: mapped pages stay resident (whole page-cache folios
    around each read), so picking 1,000 sequences from a mapped 800 MB file held ~800 MB.
    """
    sequences = load_npy(path)  # for the layout only: its pages are never touched
    _, n_stored, *frame_shape = sequences.shape
    sequence_bytes = n_stored * int(np.prod(frame_shape))
    with Path(path).open("rb") as file:
        for start in range(0, len(indices), chunk_sequences):
            batch = indices[start : start + chunk_sequences]
            chunk = np.empty((len(batch), n_frames, *frame_shape), dtype=np.uint8)
            for row, index in zip(chunk, batch, strict=True):
                read_into(file, sequences.offset + int(index) * sequence_bytes, row, path)
            yield chunk
