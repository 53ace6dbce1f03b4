"""Training batches for Keras: uint8 on the host, float32 only on the device that trains.

Every batch is a pure function of its index: batch i belongs to epoch i // batches_per_epoch
and is drawn from (`seed`, epoch, position). So the order holds however far Keras prefetches
or however many workers fill the queue, and a resumed run that starts at `first_batch` sees
exactly the batches an uninterrupted one would. `nextframe.frames.batch_to_frames` turns a
batch into frames; `nextframe.trainer.SequenceTrainer` trains on it.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from nextframe.data.moving_mnist import SequenceSpec, draw_recipes

# Mixed into fresh batches' random streams, so they never coincide with a split's stream.
_FRESH_STREAM = 0x66726573
# Where each clip is cut and how it is turned: a stream of its own, so the order and starts
# of an epoch are those of a run without crops or augmentation.
_PLACE_STREAM = 0x706C6163
# How many of the square's symmetries each `train.augment` draws from (`_transformed`):
# 0-3 flips (none, left-right, up-down, both), 4-7 the same after a quarter turn.
AUGMENTS = {"none": 1, "flips": 4, "flips_and_turns": 8}


class IndexedBatches(keras.utils.PyDataset):
    """Batches by index: endless (`repeat`, for fit with `steps_per_epoch`) or one epoch.

    In a cluster of training processes (`share`), each process feeds its own contiguous
    share of every global batch, so together they see the batches one process would."""

    def __init__(self, batches_per_epoch: int, *, repeat: bool, workers: int = 1):
        super().__init__(workers=workers, use_multiprocessing=False)
        self.batches_per_epoch = batches_per_epoch
        self.repeat = repeat
        self.first_batch = 0
        self.process, self.processes = 0, 1

    @property
    def num_batches(self) -> int | None:
        return None if self.repeat else self.batches_per_epoch

    def share(self, process: int, processes: int) -> None:
        """Feed process `process`'s share of every batch, of `processes` in all."""
        self.process, self.processes = process, processes

    def __getitem__(self, index: int):
        epoch, position = divmod(self.first_batch + index, self.batches_per_epoch)
        batch = self.batch(epoch, position)
        if self.processes == 1:
            return batch
        return _share_of(batch, self.process, self.processes)

    def batch(self, epoch: int, position: int):
        raise NotImplementedError


def _share_of(batch, process: int, processes: int):
    """Rows [p * n, (p + 1) * n) of every array of `batch`, n = rows // processes (a last
    batch that does not split evenly loses its remainder)."""
    arrays = batch if isinstance(batch, dict) else {"": batch}
    n = len(next(iter(arrays.values()))) // processes
    shares = {k: v[process * n : (process + 1) * n] for k, v in arrays.items()}
    return shares if isinstance(batch, dict) else shares[""]


def _transformed(clip: np.ndarray, symmetry: int) -> np.ndarray:
    """A clip (T, H, W, C) under one of the square's 8 symmetries (`AUGMENTS`): every frame
    alike, so motion turns with the picture."""
    if symmetry >= 4:
        clip = np.rot90(clip, 1, axes=(1, 2))
    if symmetry % 4 in (1, 3):
        clip = clip[:, :, ::-1]
    if symmetry % 4 in (2, 3):
        clip = clip[:, ::-1]
    return clip


class ClipBatches(IndexedBatches):
    """uint8 clips (B, window, crop, crop, C) from fixed (N, T, H, W, C) uint8 windows: an
    array, or a `nextframe.data.windows.WindowFile` read from disk a clip at a time.

    Each sequence is cut to `window` consecutive frames: at a random start drawn per epoch
    when shuffling (more distinct clips from the same sequences), else the last `window`
    frames. With `crop` smaller than the stored frames, each clip is a `crop` x `crop` crop at
    a place drawn anew each epoch (more distinct clips from the same disk), and with `augment`
    (`AUGMENTS`) flipped or turned, and with `reverse_time` played backwards half the time,
    drawn the same way; none of these changes the epoch's order.
    The last batch of an epoch holds what is left of the first `rows_per_epoch` of the
    epoch's order (all by default; fewer so every batch splits over devices).
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
        rows_per_epoch: int | None = None,
        crop: int | None = None,
        augment: str = "none",
        reverse_time: bool = False,
    ):
        rows = len(sequences_uint8) if rows_per_epoch is None else rows_per_epoch
        super().__init__(math.ceil(rows / batch_size), repeat=repeat)
        self.rows_per_epoch = rows
        self.sequences_uint8 = sequences_uint8
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        n_frames = sequences_uint8.shape[1]
        self.window = n_frames if window is None else window
        if not 2 <= self.window <= n_frames:
            raise ValueError(f"window must be in [2, {n_frames}], got {window}")
        height, width = sequences_uint8.shape[2:4]
        self.crop = crop
        if crop is not None and not 1 <= crop <= min(height, width):
            raise ValueError(f"crop must be in [1, {min(height, width)}], got {crop}")
        self.symmetries = AUGMENTS[augment]
        self.reverse_time = reverse_time
        if self.symmetries > 4 and (crop is None and height != width):
            raise ValueError(f"quarter turns need square clips, got {height}x{width}")
        self._epoch_plan: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._epoch_places: dict[int, np.ndarray] = {}

    @property
    def sequences_per_epoch(self) -> int:
        return self.rows_per_epoch

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

    def places(self, epoch: int) -> np.ndarray:
        """Epoch `epoch`: each sequence's crop corner (top, left), symmetry (`AUGMENTS`) and
        whether it plays backwards, as rows (N, 4) indexed by sequence; corners 0 without a
        crop, symmetry 0 without augmentation, forwards without `reverse_time`."""
        if epoch not in self._epoch_places:
            n, _, height, width = self.sequences_uint8.shape[:4]
            places = np.zeros((n, 4), dtype=np.int64)
            if self.shuffle:  # validation clips stay where they are
                rng = np.random.default_rng([self.seed, _PLACE_STREAM, epoch])
                if self.crop is not None:
                    places[:, 0] = rng.integers(0, height - self.crop + 1, size=n)
                    places[:, 1] = rng.integers(0, width - self.crop + 1, size=n)
                places[:, 2] = rng.integers(0, self.symmetries, size=n)
                if self.reverse_time:  # drawn last: the other draws stay those without it
                    places[:, 3] = rng.integers(0, 2, size=n)
            self._epoch_places = {epoch: places}
        return self._epoch_places[epoch]

    def batch(self, epoch: int, position: int) -> np.ndarray:
        order, starts = self.plan(epoch)
        end = min((position + 1) * self.batch_size, self.rows_per_epoch)
        picked = np.sort(order[position * self.batch_size : end])
        if self.crop is None and self.symmetries == 1 and not self.reverse_time:
            return np.stack(
                [self.sequences_uint8[i, starts[i] : starts[i] + self.window] for i in picked]
            )
        places, size = self.places(epoch), self.crop
        clips = []
        for i in picked:
            top, left, symmetry, backwards = places[i]
            rows = slice(top, None if size is None else top + size)
            columns = slice(left, None if size is None else left + size)
            clip = self.sequences_uint8[i, starts[i] : starts[i] + self.window][:, rows, columns]
            clip = _transformed(clip, int(symmetry))
            clips.append(clip[::-1] if backwards else clip)
        return np.stack(clips)


class FreshBatches(IndexedBatches):
    """Newly drawn sequences every epoch, the Moving MNIST protocol: recipes (digits and their
    places, `nextframe.data.moving_mnist.Recipes`) of sequences as `spec` says (its frames:
    the training window), drawn from the training digits as a pure function of (`seed`,
    epoch, position).

    An epoch is `sequences_per_epoch` rounded up to whole batches: every batch has the same
    shape, so a compiled train step is never traced again for a smaller last batch.
    """

    def __init__(
        self,
        digit_pool_uint8: np.ndarray,
        batch_size: int,
        sequences_per_epoch: int,
        spec: SequenceSpec,
        *,
        seed: int,
        workers: int = 1,
    ):
        super().__init__(math.ceil(sequences_per_epoch / batch_size), repeat=True, workers=workers)
        if len(digit_pool_uint8) == 0:
            raise ValueError("fresh sequences need a non-empty digit pool")
        self.digit_pool_uint8 = digit_pool_uint8
        self.batch_size = batch_size
        self.seed = seed
        self.spec = spec

    @property
    def sequences_per_epoch(self) -> int:
        return self.batches_per_epoch * self.batch_size

    def batch(self, epoch: int, position: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.seed, _FRESH_STREAM, epoch, position])
        recipes = draw_recipes(rng, self.digit_pool_uint8, self.batch_size, self.spec)
        return {"digits": recipes.digits_uint8, "top_left": recipes.top_left}
