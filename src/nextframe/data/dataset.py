"""Batches for Keras: uint8 sequences on disk, float32 only one batch at a time."""

from __future__ import annotations

import math

import keras
import numpy as np


class SequenceBatches(keras.utils.PyDataset):
    """(frames 0..T-2, frames 1..T-1) float32 batches in [0, 1] from (N, T, H, W) uint8:
    every frame is the target of the one before it (see `nextframe.model.SequenceTrainer`).

    With `repeat`, batches run on endlessly and batch i comes from epoch
    i // `batches_per_epoch`, shuffled from (`seed`, epoch): a pure function of i, so the
    order holds however far Keras prefetches, and a resumed run that starts at
    `first_batch` sees what an uninterrupted one would. Works on every Keras backend since
    it only hands out numpy arrays.
    """

    def __init__(
        self,
        sequences_uint8: np.ndarray,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        repeat: bool = False,
    ):
        super().__init__(workers=1, use_multiprocessing=False)
        self.sequences_uint8 = sequences_uint8
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.repeat = repeat
        self.first_batch = 0
        self.batches_per_epoch = math.ceil(len(sequences_uint8) / batch_size)
        self._orders: dict[int, np.ndarray] = {}

    @property
    def num_batches(self) -> int | None:
        return None if self.repeat else self.batches_per_epoch

    def order(self, epoch: int) -> np.ndarray:
        """Sequence indices in the order epoch `epoch` (0-based) visits them."""
        if epoch not in self._orders:
            n = len(self.sequences_uint8)
            rng = np.random.default_rng([self.seed, epoch])
            self._orders = {epoch: rng.permutation(n) if self.shuffle else np.arange(n)}
        return self._orders[epoch]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        epoch, position = divmod(self.first_batch + index, self.batches_per_epoch)
        start = position * self.batch_size
        picked = np.sort(self.order(epoch)[start : start + self.batch_size])
        frames = to_float_frames(self.sequences_uint8[picked])
        return frames[:, :-1], frames[:, 1:]


def to_float_frames(sequences_uint8: np.ndarray) -> np.ndarray:
    """(N, T, H, W) uint8 -> (N, T, H, W, 1) float32 in [0, 1], the model's input layout."""
    return (np.asarray(sequences_uint8, dtype=np.float32) / 255.0)[..., None]
