"""Batches for Keras: uint8 sequences on disk, float32 only one batch at a time."""

from __future__ import annotations

import math

import keras
import numpy as np


class SequenceBatches(keras.utils.PyDataset):
    """(frames 0..T-2, frames 1..T-1) float32 batches in [0, 1] from (N, T, H, W) uint8:
    every frame is the target of the one before it (see `nextframe.model.SequenceTrainer`).

    With `window`, each sequence is cut to `window` consecutive frames: at a random start
    drawn per epoch when shuffling (more distinct clips from the same sequences), else the
    last `window` frames.

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
        window: int | None = None,
    ):
        super().__init__(workers=1, use_multiprocessing=False)
        self.sequences_uint8 = sequences_uint8
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.repeat = repeat
        n_frames = sequences_uint8.shape[1]
        self.window = n_frames if window is None else window
        if not 2 <= self.window <= n_frames:
            raise ValueError(f"window must be in [2, {n_frames}], got {window}")
        self.first_batch = 0
        self.batches_per_epoch = math.ceil(len(sequences_uint8) / batch_size)
        self._epoch_plan: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def num_batches(self) -> int | None:
        return None if self.repeat else self.batches_per_epoch

    def plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """Epoch `epoch` (0-based): sequence indices in visiting order, and each sequence's
        first frame (indexed by sequence)."""
        if epoch not in self._epoch_plan:
            n, n_frames = self.sequences_uint8.shape[:2]
            latest_start = n_frames - self.window
            if self.shuffle:
                rng = np.random.default_rng([self.seed, epoch])
                order = rng.permutation(n)
                starts = rng.integers(0, latest_start + 1, size=n)
            else:
                order, starts = np.arange(n), np.full(n, latest_start)
            self._epoch_plan = {epoch: (order, starts)}
        return self._epoch_plan[epoch]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        epoch, position = divmod(self.first_batch + index, self.batches_per_epoch)
        order, starts = self.plan(epoch)
        picked = np.sort(order[position * self.batch_size : (position + 1) * self.batch_size])
        clips = np.stack(
            [self.sequences_uint8[i, starts[i] : starts[i] + self.window] for i in picked]
        )
        frames = to_float_frames(clips)
        return frames[:, :-1], frames[:, 1:]


def to_float_frames(sequences_uint8: np.ndarray) -> np.ndarray:
    """(N, T, H, W) uint8 -> (N, T, H, W, 1) float32 in [0, 1], the model's input layout."""
    return (np.asarray(sequences_uint8, dtype=np.float32) / 255.0)[..., None]
