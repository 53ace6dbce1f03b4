import numpy as np
import pytest

from nextframe.data.dataset import SequenceBatches, to_float_frames


def _sequences(n=10, t=5) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, t, 8, 8), dtype=np.uint8)


def test_batches_are_float32_next_frame_pairs():
    sequences = _sequences()
    batches = SequenceBatches(sequences, batch_size=4, shuffle=False)
    inputs, targets = batches[0]
    assert batches.num_batches == 3
    assert inputs.dtype == np.float32 and inputs.shape == (4, 4, 8, 8, 1)
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
    np.testing.assert_allclose(inputs[0, 0, ..., 0], sequences[0, 0] / 255.0, rtol=1e-6)
    assert batches[2][0].shape[0] == 2  # the last, partial batch


def test_shuffle_is_a_function_of_seed_and_epoch():
    sequences = _sequences(n=32)
    first = SequenceBatches(sequences, batch_size=32, shuffle=True, seed=1)
    second = SequenceBatches(sequences, batch_size=32, shuffle=True, seed=1)
    np.testing.assert_array_equal(first.plan(0)[0], second.plan(0)[0])
    assert not np.array_equal(first.plan(3)[0], first.plan(0)[0])
    assert sorted(first.plan(3)[0]) == list(range(32))
    np.testing.assert_array_equal(first.plan(3)[0], second.plan(3)[0])


def test_repeating_batches_follow_the_epochs_and_resume_at_any_batch():
    sequences = _sequences(n=10)
    endless = SequenceBatches(sequences, batch_size=4, shuffle=True, seed=2, repeat=True)
    assert endless.num_batches is None and endless.batches_per_epoch == 3
    stream = [endless[i][0] for i in range(7)]  # epochs 0, 0, 0, 1, 1, 1, 2
    epoch_one = to_float_frames(sequences[np.sort(endless.plan(1)[0][:4])])[:, :-1]
    np.testing.assert_array_equal(stream[3], epoch_one)
    assert stream[2].shape[0] == 2  # each epoch ends with its partial batch
    resumed = SequenceBatches(sequences, batch_size=4, shuffle=True, seed=2, repeat=True)
    resumed.first_batch = 3
    for i in range(4):
        np.testing.assert_array_equal(resumed[i][0], stream[3 + i])


def test_windows_are_random_clips_when_shuffled_and_the_last_frames_otherwise():
    sequences = _sequences(n=6, t=8)
    clips = SequenceBatches(sequences, batch_size=6, shuffle=True, seed=0, window=5)
    order, starts = clips.plan(0)
    inputs, targets = clips[0]
    assert inputs.shape == (6, 4, 8, 8, 1)
    for row, i in enumerate(np.sort(order)):
        expected = to_float_frames(sequences[i : i + 1, starts[i] : starts[i] + 5])[0]
        np.testing.assert_array_equal(inputs[row], expected[:-1])
        np.testing.assert_array_equal(targets[row], expected[1:])
    assert len(set(starts)) > 1 and starts.max() <= 3
    last = SequenceBatches(sequences, batch_size=6, shuffle=False, window=5)
    np.testing.assert_array_equal(last[0][1], to_float_frames(sequences[:, 4:]))
    with pytest.raises(ValueError, match="window"):
        SequenceBatches(sequences, batch_size=6, shuffle=False, window=9)


def test_to_float_frames_scales_to_unit_range():
    frames = to_float_frames(np.array([[[[0, 255]]]], dtype=np.uint8))
    assert frames.dtype == np.float32
    np.testing.assert_array_equal(frames[..., 0], [[[[0.0, 1.0]]]])
