import numpy as np

from nextframe.data.dataset import SequenceBatches, to_float_frames


def _sequences(n=10, t=5) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, t, 8, 8), dtype=np.uint8)


def test_batches_are_float32_next_frame_pairs():
    sequences = _sequences()
    batches = SequenceBatches(sequences, batch_size=4, shuffle=False)
    inputs, targets = batches[0]
    assert len(batches) == 3
    assert inputs.dtype == np.float32 and inputs.shape == (4, 4, 8, 8, 1)
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
    np.testing.assert_allclose(inputs[0, 0, ..., 0], sequences[0, 0] / 255.0, rtol=1e-6)
    assert batches[2][0].shape[0] == 2  # the last, partial batch


def test_shuffle_is_seeded_and_changes_each_epoch():
    sequences = _sequences(n=32)
    first = SequenceBatches(sequences, batch_size=32, shuffle=True, seed=1)
    second = SequenceBatches(sequences, batch_size=32, shuffle=True, seed=1)
    np.testing.assert_array_equal(first.order, second.order)
    epoch_one = first.order.copy()
    first.on_epoch_end()
    assert not np.array_equal(first.order, epoch_one)
    assert sorted(first.order) == list(range(32))


def test_to_float_frames_scales_to_unit_range():
    frames = to_float_frames(np.array([[[[0, 255]]]], dtype=np.uint8))
    assert frames.dtype == np.float32
    np.testing.assert_array_equal(frames[..., 0], [[[[0.0, 1.0]]]])
