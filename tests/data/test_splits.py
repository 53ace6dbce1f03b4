import hashlib
import io

import numpy as np
import pytest

from nextframe.data.splits import (
    clips_per_split,
    sha256_of_array,
    split_indices,
    split_of_clips,
    split_quotas,
    split_windows,
)
from nextframe.data.windows import WindowFile, open_windows
from nextframe.errors import NextframeError
from nextframe.io import npy_appender, write_npy_in_chunks
from nextframe.params import parse_params

from ..helpers import tiny_params

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
    ("array", "message"),
    [
        (np.zeros((2, 20, 64, 64, 1), dtype=np.float32), r"expected windows \(N, T, H, W, C\)"),
        (np.zeros((20, 64, 64), dtype=np.uint8), r"expected windows \(N, T, H, W, C\)"),
        (np.zeros((2, 5, 64, 64, 1), dtype=np.uint8), r"expected \(N, 20, 64, 64, 1\) uint8"),
        (np.zeros((2, 20, 32, 32, 1), dtype=np.uint8), r"expected \(N, 20, 64, 64, 1\) uint8"),
        (np.zeros((2, 20, 64, 64, 3), dtype=np.uint8), r"expected \(N, 20, 64, 64, 1\) uint8"),
        (np.zeros((0, 20, 64, 64, 1), dtype=np.uint8), r"expected \(N, 20, 64, 64, 1\) uint8"),
        (
            np.asfortranarray(np.zeros((2, 20, 64, 64, 1), dtype=np.uint8)),
            r"expected windows \(N, T, H, W, C\) uint8 in C order",
        ),
    ],
)
def test_wrong_layout_is_refused(tmp_path, array, message):
    np.save(tmp_path / "x.npy", array)
    with pytest.raises(NextframeError, match=message):
        open_windows(tmp_path / "x.npy", n_frames=20, frame_size=64, channels=1)


def test_digest_depends_on_content():
    a = np.zeros((2, 2), dtype=np.uint8)
    assert sha256_of_array(a) == sha256_of_array(a.copy())
    assert sha256_of_array(a) != sha256_of_array(a + 1)


def _random_uint8(shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)


def test_window_file_reads_what_indexing_the_array_gives(tmp_path):
    windows = _random_uint8((9, 6, 4, 4, 3))
    np.save(tmp_path / "w.npy", windows)
    read = WindowFile(tmp_path / "w.npy")
    assert read.shape == windows.shape and len(read) == 9
    np.testing.assert_array_equal(read[4], windows[4])
    np.testing.assert_array_equal(read[2:5], windows[2:5])
    np.testing.assert_array_equal(read[7, 1:4], windows[7, 1:4])
    indices = np.array([0, 2, 3, 7, 8])
    chunks = list(read.chunks(indices, n_frames=4, per_chunk=2))
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert all(c.flags.c_contiguous and c.dtype == np.uint8 for c in chunks)
    np.testing.assert_array_equal(np.concatenate(chunks), windows[indices, :4])


def test_rows_appended_before_their_count_is_known_load_as_the_array(tmp_path):
    rows = _random_uint8((7, 3, 4, 4, 1))
    with npy_appender(tmp_path / "a.npy", (3, 4, 4, 1)) as appender:
        appender.append(rows[:3])
        appender.append(rows[3:])
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), rows)
    assert appender.digest == sha256_of_array(rows)


def test_chunked_write_is_np_save_and_returns_sha256_of_array(tmp_path):
    array = _random_uint8((5, 3, 4, 4))
    shape = tuple(np.int64(n) for n in array.shape)  # numpy ints must not reach the header
    digest = write_npy_in_chunks(tmp_path / "a.npy", shape, [array[:2], array[2:]])
    saved = io.BytesIO()
    np.save(saved, array, allow_pickle=False)
    assert (tmp_path / "a.npy").read_bytes() == saved.getvalue()
    assert digest == sha256_of_array(array)


def test_chunked_write_that_does_not_fill_the_shape_leaves_no_file(tmp_path):
    array = _random_uint8((5, 3, 4, 4))
    with pytest.raises(ValueError, match="hold 2 rows"):
        write_npy_in_chunks(tmp_path / "a.npy", array.shape, [array[:2]])
    assert list(tmp_path.iterdir()) == []


# -- a folder's split by clip: quotas, stable as clips are added --------------------------------


def _folder_info(n_clips: int, windows_per_clip: int = 2, start: int = 0) -> dict:
    """Clips sharing no frame: each its own group, keyed by its content."""
    clips = []
    for i in range(start, start + n_clips):
        sha256 = hashlib.sha256(f"content {i}".encode()).hexdigest()
        clips.append(
            {
                "name": f"clip_{i:03d}.mp4",
                "sha256": sha256,
                "group": sha256,
                "first_window": (i - start) * windows_per_clip,
                "windows": windows_per_clip,
                "split": None,
            }
        )
    return {"source": "folder", "folder": "clips", "clips": clips}


def _folder_data(val_fraction: float = 0.1, test_fraction: float = 0.1):
    edits = {"source": "folder", "val_fraction": val_fraction, "test_fraction": test_fraction}
    return parse_params(tiny_params({"data": edits})).data


@pytest.mark.parametrize("seed", range(1, 9))
def test_a_small_folder_gets_its_quota_of_val_and_test_clips_for_every_seed(seed):
    """14 clips, the default fractions (0.1): ceil(1.4) = 2 clips each for val and test."""
    info = _folder_info(14)
    indices = split_windows(info, 28, _folder_data(), seed)
    assert clips_per_split(info, indices) == {"train": 10, "val": 2, "test": 2}
    together = np.concatenate(list(indices.values()))
    assert sorted(together.tolist()) == list(range(28))


@pytest.mark.parametrize(
    ("n_clips", "fractions", "quotas"),
    [
        (3, (0.1, 0.1), {"train": 1, "val": 1, "test": 1}),
        (10, (0.1, 0.1), {"train": 8, "val": 1, "test": 1}),
        (11, (0.1, 0.1), {"train": 7, "val": 2, "test": 2}),
        (30, (0.1, 0.1), {"train": 24, "val": 3, "test": 3}),  # 0.1 x 30 is 3.0000000000000004
        (4, (0.45, 0.45), {"train": 1, "val": 1, "test": 2}),  # val gives way first
        (2, (0.1, 0.1), {"train": 1, "val": 0, "test": 1}),
    ],
)
def test_split_quotas(n_clips, fractions, quotas):
    assert split_quotas(n_clips, *fractions) == quotas


def _moves(before: dict[str, str], after: dict[str, str]) -> int:
    return sum(after[name] != split for name, split in before.items())


@pytest.mark.parametrize("fractions", [(0.1, 0.1), (0.2, 0.1), (0.15, 0.3)])
def test_adding_a_clip_moves_at_most_one_other_while_the_quotas_stay(fractions):
    """...and at most two when the new clip raises a quota (no split can do better then)."""
    for seed in range(4):
        for n_clips in range(3, 45):
            before = split_of_clips(_folder_info(n_clips)["clips"], seed, *fractions)
            added = _folder_info(n_clips + 1)["clips"]
            after = split_of_clips(added, seed, *fractions)
            same_quotas = split_quotas(n_clips, *fractions) == split_quotas(n_clips + 1, *fractions)
            assert _moves(before, after) <= (1 if same_quotas else 2), (seed, n_clips)


@pytest.mark.parametrize("seed", range(1, 9))
def test_a_fifteenth_clip_moves_at_most_one_of_fourteen(seed):
    before = split_of_clips(_folder_info(14)["clips"], seed, 0.1, 0.1)
    after = split_of_clips(_folder_info(15)["clips"], seed, 0.1, 0.1)
    assert _moves(before, after) <= 1


def test_identical_clips_share_a_split():
    clips = _folder_info(12)["clips"]
    copies = [clip | {"name": f"copy of {clip['name']}"} for clip in clips]
    for seed in range(8):
        split_of = split_of_clips(clips + copies, seed, 0.2, 0.2)
        assert all(split_of[c["name"]] == split_of[f"copy of {c['name']}"] for c in clips)
        assert sorted(split_of.values()).count("test") == 2 * 3  # ceil(0.2 x 12 contents)


def test_too_few_clips_to_split_is_one_line():
    with pytest.raises(NextframeError, match=r"falls into val: 2 distinct clips are too few"):
        split_windows(_folder_info(2), 4, _folder_data(), seed=0)


def test_clips_of_one_group_share_a_split_and_the_quotas_count_groups():
    """12 clips, 3 of them one group (a take cut into overlapping files): 10 groups, ceil(0.2 x
    10) = 2 groups each for val and test, the group's clips in one split."""
    clips = _folder_info(12)["clips"]
    for clip in clips[1:3]:
        clip["group"] = clips[0]["group"]
    for seed in range(8):
        split_of = split_of_clips(clips, seed, 0.2, 0.2)
        assert len({split_of[clip["name"]] for clip in clips[:3]}) == 1, seed
        groups_in = {split_of[clip["name"]]: set() for clip in clips}
        for clip in clips:
            groups_in[split_of[clip["name"]]].add(clip["group"])
        assert {split: len(groups_in[split]) for split in ("val", "test")} == {"val": 2, "test": 2}
