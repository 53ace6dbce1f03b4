import numpy as np
import pytest

from nextframe.data.splits import sha256_of_array, split_indices, validate_sequences
from nextframe.errors import NextframeError

COUNTS = {"train": 6, "val": 2, "test": 2}


def test_generated_layout_keeps_held_out_test_block():
    given = {"train": 8, "val": 3, "test": 4}
    idx = split_indices(15, COUNTS, seed=0, given_sizes=given)
    assert idx["train"].tolist() == list(range(6))
    assert idx["val"].tolist() == [8, 9]
    assert idx["test"].tolist() == [11, 12]


def test_downloaded_data_is_shuffled_deterministically_without_overlap():
    first = split_indices(20, COUNTS, seed=3, given_sizes=None)
    second = split_indices(20, COUNTS, seed=3, given_sizes=None)
    assert all(np.array_equal(first[s], second[s]) for s in first)
    together = np.concatenate(list(first.values()))
    assert len(set(together.tolist())) == 10
    other = split_indices(20, COUNTS, seed=4, given_sizes=None)
    assert not np.array_equal(first["train"], other["train"])


def test_asking_for_more_than_fetched_is_one_line():
    with pytest.raises(NextframeError, match="holds 5 sequences"):
        split_indices(5, COUNTS, seed=0, given_sizes=None)
    with pytest.raises(NextframeError, match="run the fetch stage again"):
        split_indices(20, COUNTS, seed=0, given_sizes={"train": 2, "val": 9, "test": 9})


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((2, 20, 64, 64), dtype=np.float32),
        np.zeros((20, 64, 64), dtype=np.uint8),
        np.zeros((2, 5, 64, 64), dtype=np.uint8),
        np.zeros((2, 20, 32, 32), dtype=np.uint8),
        np.zeros((0, 20, 64, 64), dtype=np.uint8),
    ],
)
def test_wrong_layout_is_refused(array):
    with pytest.raises(NextframeError, match=r"expected \(N, 20, 64, 64\) uint8"):
        validate_sequences(array, "x.npy", n_frames=20, frame_size=64)


def test_digest_depends_on_content():
    a = np.zeros((2, 2), dtype=np.uint8)
    assert sha256_of_array(a) == sha256_of_array(a.copy())
    assert sha256_of_array(a) != sha256_of_array(a + 1)
