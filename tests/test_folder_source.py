"""`data.source: folder` through the real fetch and preprocess stages: Moving MNIST written out
losslessly and read back gives the native windows byte for byte; a folder without split
sub-folders is split by clip, stably; bad folders are one line naming the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nextframe.clips import read_clip
from nextframe.data.export import write_clip
from nextframe.frames import FrameFormat, to_uint8
from nextframe.presets import merged

from .helpers import (
    PATHS,
    REPO_ROOT,
    nextframe_command,
    run,
    run_stage,
    tiny_params,
    write_params,
)
from .test_clips import _zip_member_span

pytestmark = pytest.mark.integration

SPLITS = ("train", "val", "test")


def fetch_and_preprocess(workdir: Path, params: dict) -> dict[str, np.ndarray]:
    write_params(workdir, params)
    for stage in ("fetch", "preprocess"):
        result = run_stage(stage, workdir)
        assert result.returncode == 0, result.stderr
    return {
        split: np.load(workdir / f"data/processed/{split}.npy", allow_pickle=False)
        for split in SPLITS
    }


@pytest.fixture(scope="module")
def native(tmp_path_factory) -> dict[str, np.ndarray]:
    """The generated source's windows with the tiny params."""
    return fetch_and_preprocess(tmp_path_factory.mktemp("native"), tiny_params())


@pytest.mark.parametrize("fmt", ["mkv", "png"])
def test_moving_mnist_written_losslessly_reads_back_as_the_same_windows(native, tmp_path, fmt):
    """`nextframe export` writes the generated source's sequences as FFV1 videos (or PNG
    frames) in train/ val/ test/; read as a folder they are the very same windows."""
    params = tiny_params()
    write_params(tmp_path, params)
    run(nextframe_command("export", "clips", "--format", fmt), tmp_path)
    n_frames = params["data"]["n_frames"]
    folder = {"source": "folder", "folder": "clips", "window_stride": n_frames}
    windows = fetch_and_preprocess(tmp_path, tiny_params({"data": folder}))
    for split in SPLITS:
        assert windows[split].tobytes() == native[split].tobytes(), split
    manifest = json.loads((tmp_path / PATHS["manifest"]).read_text())
    assert manifest["dataset"]["name"] == "clips"
    assert manifest["dataset"]["clips"] == {s: len(native[s]) for s in SPLITS}


def colour_clips(folder: Path, n_clips: int, n_frames: int = 12, size: int = 24) -> None:
    """Clips of distinct random colour noise, as .npy (exact) and .mkv (FFV1, exact)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for index in range(n_clips):
        frames = rng.integers(0, 256, (n_frames, size, size, 3), dtype=np.uint8)
        suffix = ".npy" if index % 2 else ".mkv"
        write_clip(folder / f"clip_{index:03d}{suffix}", frames)


FOLDER_PARAMS = {
    "data": {
        "source": "folder",
        "folder": "clips",
        "channels": 3,
        "frame_size": 24,
        "window_stride": 2,
        "val_fraction": 0.2,
        "test_fraction": 0.2,
    },
    "model": {"patch_size": 2},
}


def _split_of_windows(windows: dict[str, np.ndarray]) -> dict[bytes, str]:
    return {window.tobytes(): split for split in SPLITS for window in windows[split]}


def test_a_folder_is_split_into_quotas_and_adding_a_clip_moves_at_most_one(tmp_path):
    """14 distinct clips and a copy of one, the default fractions (0.1): ceil(1.4) = 2 each
    for val and test, the copy with its twin; a 15th clip leaves the quotas as they are and
    moves at most one clip. Checked on preprocess's split files."""
    colour_clips(tmp_path / "clips", 14)
    shutil.copy(tmp_path / "clips" / "clip_001.npy", tmp_path / "clips" / "clip_001_copy.npy")
    fractions = {"data": {"val_fraction": 0.1, "test_fraction": 0.1}}
    windows = fetch_and_preprocess(tmp_path, tiny_params(merged(FOLDER_PARAMS, fractions)))
    # 12 frames, windows of 8 every 2 frames: 3 windows a clip.
    distinct = {split: len({w.tobytes() for w in windows[split]}) // 3 for split in SPLITS}
    assert distinct == {"train": 10, "val": 2, "test": 2}
    assert sum(len(windows[split]) for split in SPLITS) == 15 * 3
    # No frame of a test (or val) clip is in any train window: checked on the written files.
    train_frames = {frame.tobytes() for window in windows["train"] for frame in window}
    for split in ("val", "test"):
        assert all(f.tobytes() not in train_frames for w in windows[split] for f in w), split

    before = _split_of_windows(windows)
    # A new clip (colour_clips would write clip_000 again: its copy moves nothing).
    new = np.random.default_rng(99).integers(0, 256, (12, 24, 24, 3), dtype=np.uint8)
    write_clip(tmp_path / "clips" / "clip_new.mkv", new)
    for stage in ("fetch", "preprocess"):
        assert run_stage(stage, tmp_path).returncode == 0
    after = _split_of_windows(
        {s: np.load(tmp_path / f"data/processed/{s}.npy", allow_pickle=False) for s in SPLITS}
    )
    assert set(before) <= set(after) and len(after) == len(before) + 3
    moved = [window for window, split in before.items() if after[window] != split]
    assert len(moved) <= 3, f"{len(moved) // 3} clips moved"


def _recordings(size: int) -> list[np.ndarray]:
    """The repo's ten example clips (30 frames of colour Moving MNIST each) as uint8 frames."""
    paths = sorted((REPO_ROOT / "examples" / "clips").rglob("*.mp4"))
    return [to_uint8(read_clip(path, FrameFormat(size, 3))[0]) for path in paths]


def test_clips_sharing_frames_share_a_split(tmp_path):
    """The example clips written losslessly (.npy, PNG frames) into one folder, with what users
    make of one recording: a take cut into two files that overlap by 6 frames, a clip and an
    excerpt of it, the same frames saved twice (as .npy and as PNGs: other bytes, same frames).
    No kept frame is in two splits, checked on preprocess's split files."""
    recordings = _recordings(24)
    clips = {f"whole_{i}.npy" if i % 2 else f"whole_{i}": recordings[i] for i in range(7)}
    clips |= {"take_part1.npy": recordings[7][:18], "take_part2": recordings[7][12:]}
    clips |= {"long.npy": recordings[8], "long_excerpt": recordings[8][5:20]}
    clips |= {"twice.npy": recordings[9], "twice_as_png": recordings[9]}
    for name, frames in clips.items():
        write_clip(tmp_path / "clips" / name, frames)
    fractions = {"data": {"val_fraction": 0.2, "test_fraction": 0.2}}
    windows = fetch_and_preprocess(tmp_path, tiny_params(merged(FOLDER_PARAMS, fractions)))
    splits_of_frame: dict[bytes, set[str]] = {}
    for split in SPLITS:
        for frame in windows[split].reshape(-1, 24, 24, 3):
            splits_of_frame.setdefault(frame.tobytes(), set()).add(split)
    leaked = [sorted(s) for s in splits_of_frame.values() if len(s) > 1]
    assert not leaked, f"{len(leaked)} frames in two splits, e.g. in {' and '.join(leaked[0])}"
    # 13 clips in 10 groups; the quotas count groups: ceil(0.2 x 10) = 2 each for val and test.
    info = json.loads((tmp_path / PATHS["info"]).read_text())
    group_of = {clip["name"]: clip["group"] for clip in info["clips"]}
    for pair in (("take_part1.npy", "take_part2"), ("long.npy", "long_excerpt")):
        assert group_of[pair[0]] == group_of[pair[1]], pair
    assert group_of["twice.npy"] == group_of["twice_as_png"]
    groups_in = {split: set() for split in SPLITS}
    for name, frames in clips.items():
        (split,) = splits_of_frame[frames[0].tobytes()]
        groups_in[split].add(group_of[name])
    assert {split: len(groups) for split, groups in groups_in.items()} == {
        "train": 6,
        "val": 2,
        "test": 2,
    }


def test_short_clips_are_skipped_and_counted(tmp_path):
    colour_clips(tmp_path / "clips" / "train", 3)
    colour_clips(tmp_path / "clips" / "val", 1)
    colour_clips(tmp_path / "clips" / "test", 1)
    write_clip(tmp_path / "clips" / "train" / "short.npy", np.zeros((5, 24, 24, 3), np.uint8))
    (tmp_path / "clips" / "train" / "README.txt").write_text("my clips")
    write_params(tmp_path, tiny_params(FOLDER_PARAMS))
    result = run_stage("fetch", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "5 clips -> 15 windows; 1 clips shorter than one window skipped" in result.stdout
    assert "1 files that are no clip passed over: train/README.txt" in result.stdout


def test_ten_thousand_tiny_files_are_read_with_a_progress_bar(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    frames = np.zeros((8, 8, 8), np.uint8)
    for index in range(10_000):
        np.save(folder / f"{index:05d}.npy", frames + index % 200)
    params = {
        "data": {
            "source": "folder",
            "folder": "clips",
            "frame_size": 8,
            "window_stride": 8,
            "val_fraction": 0.1,
            "test_fraction": 0.1,
        },
        "model": {"patch_size": 2},
    }
    write_params(tmp_path, tiny_params(params))
    result = run_stage("fetch", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "10000 clips -> 10000 windows" in result.stdout
    assert "reading clips: 100%" in result.stderr and "10000/10000" in result.stderr


def _bad(folder: Path, kind: str) -> str:
    """Make a bad folder of `kind`; the line that must answer it (after `error: `)."""
    if kind == "missing":
        return "clips: no such folder (data.folder)"
    folder.mkdir()
    colour_clips(folder, 2)
    if kind == "no clip":
        shutil.rmtree(folder)
        folder.mkdir()
        (folder / "notes.txt").write_text("hi")
        return "clips: holds no clip (read are .mp4"
    if kind == "text as video":
        (folder / "zz.mp4").write_text("not a video")
        return "zz.mp4: not a readable video"
    if kind == "empty video":
        (folder / "zz.webm").write_bytes(b"")
        return "zz.webm: an empty file (0 bytes)"
    if kind == "NaN":
        np.save(folder / "zz.npy", np.full((10, 24, 24), np.nan, np.float32))
        return "zz.npy frame 1: 576 values are NaN or infinite"
    if kind == "float without range":
        np.save(folder / "zz.npy", np.full((10, 24, 24), 40.0, np.float32))
        return (
            "zz.npy frame 1: float values must lie in [0, 1], found 40 to 40 (set data.value_range"
        )
    if kind == "rank 6":
        np.save(folder / "zz.npy", np.zeros((1, 1, 10, 24, 24, 3), np.uint8))
        return "zz.npy: an array of rank 6"
    if kind == "truncated npz":
        np.savez(folder / "zz.npz", frames=np.zeros((10, 24, 24), np.uint8))
        (folder / "zz.npz").write_bytes((folder / "zz.npz").read_bytes()[:-30])
        return "zz.npz: truncated or corrupt .npz (File is not a zip file)"
    if kind == "corrupt npz member":
        np.savez_compressed(folder / "zz.npz", frames=np.zeros((10, 24, 24), np.uint8))
        start, _ = _zip_member_span(folder / "zz.npz", "frames.npy")
        raw = bytearray((folder / "zz.npz").read_bytes())
        raw[start : start + 16] = b"\xff" * 16  # the member's deflate stream
        (folder / "zz.npz").write_bytes(bytes(raw))
        return "zz.npz:frames: truncated or corrupt array"
    if kind == "no clips in a stack":
        np.save(folder / "zz[0].npy", np.zeros((0, 10, 24, 24), np.uint8))
        return "zz[0].npy: an empty array (0, 10, 24, 24): it holds no frames"
    if kind == "all too short":
        shutil.rmtree(folder)
        folder.mkdir()
        np.save(folder / "a.npy", np.zeros((3, 24, 24), np.uint8))
        return "clips: every one of its 1 clips is shorter than one window"
    raise ValueError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "missing",
        "no clip",
        "text as video",
        "empty video",
        "NaN",
        "float without range",
        "rank 6",
        "truncated npz",
        "corrupt npz member",
        "no clips in a stack",
        "all too short",
    ],
)
def test_a_bad_folder_is_one_line_naming_the_file_and_writes_nothing(tmp_path, kind):
    message = _bad(tmp_path / "clips", kind)
    write_params(tmp_path, tiny_params(FOLDER_PARAMS))
    result = run_stage("fetch", tmp_path)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: ") and message in line, result.stderr
    assert "Traceback" not in result.stderr
    raw = tmp_path / "data" / "raw"
    assert not raw.exists() or not any(raw.iterdir()), "no output of a failed fetch"


def test_grey_arrays_read_as_colour_are_converted_with_a_note(tmp_path):
    folder = tmp_path / "clips"
    for split in SPLITS:
        (folder / split).mkdir(parents=True)
        np.save(folder / split / "grey.npy", np.zeros((12, 24, 24), np.uint8))
    write_params(tmp_path, tiny_params(FOLDER_PARAMS))
    result = run_stage("fetch", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "note: 3 clips converted to data.channels (grey <-> RGB)" in result.stdout
