"""Batches for Keras: uint8 sequences on disk, float32 only one batch at a time."""

from __future__ import annotations

import math

import keras
import numpy as np


class SequenceBatches(keras.utils.PyDataset):
    """(frames 0..T-2, frames 1..T-1) float32 batches in [0, 1] from (N, T, H, W) uint8:
    every frame is the target of the one before it (see `nextframe.model.SequenceTrainer`).

    Shuffled per epoch from `seed` (same seed, same order), and works on every Keras
    backend since it only hands out numpy arrays.
    """

    def __init__(
        self,
        sequences_uint8: np.ndarray,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
    ):
        super().__init__(workers=1, use_multiprocessing=False)
        self.sequences_uint8 = sequences_uint8
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.order = self._order()

    def _order(self) -> np.ndarray:
        n = len(self.sequences_uint8)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n)

    def __len__(self) -> int:
        return math.ceil(len(self.sequences_uint8) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        picked = np.sort(self.order[index * self.batch_size : (index + 1) * self.batch_size])
        frames = to_float_frames(self.sequences_uint8[picked])
        return frames[:, :-1], frames[:, 1:]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._order()


def to_float_frames(sequences_uint8: np.ndarray) -> np.ndarray:
    """(N, T, H, W) uint8 -> (N, T, H, W, 1) float32 in [0, 1], the model's input layout."""
    return (np.asarray(sequences_uint8, dtype=np.float32) / 255.0)[..., None]
