"""A folder of a user's own clips read by the fetch stage, in process (no subprocess): every
change to the frames noted in its summary, hidden files and `.npz` members that are no clip
passed over, members picked by `data.npz_members`, each stack decompressed once."""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nextframe.data.export import write_clip
from nextframe.data.folder import Windowing, find_clips, ingest
from nextframe.data.folder_source import fetch_found_clips
from nextframe.data.source import FetchPaths
from nextframe.errors import NextframeError
from nextframe.frames import FrameFormat
from nextframe.params import parse_params

from ..helpers import REPO_ROOT, tiny_params, write_params
from ..test_clips import PORTRAIT_MATRIX, _with_display_matrix

GREY_16 = FrameFormat(16, 1)
WINDOWS = Windowing(n_frames=4, window_stride=4, frame_stride=1)


def _frames(n_frames: int = 4, height: int = 16, width: int = 16, channels: int = 1):
    shape = (n_frames, height, width, channels)
    return np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)


def _ingest(folder: Path, tmp_path: Path, fmt: FrameFormat = GREY_16, **kwargs) -> str:
    report = ingest(folder, tmp_path / "windows.npy", fmt, WINDOWS, progress=False, **kwargs)
    return report.summary()


def test_every_change_to_the_frames_is_noted_in_the_summary(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    write_clip(folder / "wide.mkv", _frames(width=32, channels=3))  # cropped, resized, grey
    upright = _frames(height=16, width=32, channels=3)  # cropped too, once turned
    sideways = np.ascontiguousarray(np.rot90(upright, k=1, axes=(1, 2)))
    write_clip(folder / "phone.mp4", sideways)
    _with_display_matrix(folder / "phone.mp4", PORTRAIT_MATRIX)
    rgba = np.concatenate([_frames(), _frames(), _frames(), _frames()], axis=-1)
    np.save(folder / "rgba.npy", rgba)  # (T, H, W, 4): one clip, its alpha dropped
    (folder / "deep").mkdir()
    for t, frame in enumerate(_frames()[..., 0].astype(np.uint16) * 16):
        Image.fromarray(frame).save(folder / "deep" / f"{t}.png")
    summary = _ingest(folder, tmp_path)
    assert summary.startswith("4 clips -> 4 windows"), summary
    for note in (
        "note: 2 clips resized to 16x16 (2 not square: centre-cropped)",
        "note: 3 clips converted to data.channels (grey <-> RGB)",
        "note: 1 clips' alpha channel dropped",
        "note: 1 clips of 16-bit values read as 0-65535 (data.value_range sets another)",
        "note: 1 clips turned upright (their video's rotation)",
    ):
        assert note in summary, summary


def test_hidden_files_are_passed_over_everywhere(tmp_path):
    folder = tmp_path / "clips"
    (folder / "take1").mkdir(parents=True)
    for t, frame in enumerate(_frames()):
        Image.fromarray(frame[..., 0]).save(folder / "take1" / f"frame{t}.png")
        (folder / "take1" / f"._frame{t}.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    (folder / "._take2.mp4").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    (folder / ".DS_Store").write_bytes(b"Bud1")
    found = find_clips(folder)
    assert [clip.name for clip, _ in found.clips] == ["take1"] and not found.skipped_files
    assert _ingest(folder, tmp_path) == "1 clips -> 1 windows"


def test_npz_members_that_are_no_clip_are_passed_over_and_said(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    np.savez(folder / "scan.npz", frames=_frames()[..., 0], timestamps=np.arange(4.0))
    np.savez(folder / "grid.npz", lat=np.zeros((16, 16)), lon=np.zeros((16, 16)))
    summary = _ingest(folder, tmp_path)
    assert summary == (
        "1 clips -> 1 windows; 3 .npz members that are no clip passed over: grid.npz:lat "
        "(16, 16), grid.npz:lon (16, 16), scan.npz:timestamps (4,)"
    )


def test_data_npz_members_picks_the_members_read(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    np.savez(folder / "a.npz", frames=_frames()[..., 0], masks=_frames()[..., 0] // 255)
    np.savez(folder / "b.npz", frames=_frames()[..., 0])
    found = find_clips(folder, npz_members=["frames"])
    assert [clip.name for clip, _ in found.clips] == ["a.npz:frames", "b.npz:frames"]
    with pytest.raises(NextframeError, match=r"^b.npz: has no member masks"):
        find_clips(folder, npz_members=["masks"])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "data.npz_members must name at least one member"),
        (["frames", "frames"], "data.npz_members names frames twice"),
        ([""], "data.npz_members"),
        ("frames", "data.npz_members"),
    ],
)
def test_npz_members_is_checked_by_the_params_check(value, message):
    params = tiny_params({"data": {"source": "folder", "npz_members": value}})
    with pytest.raises(NextframeError, match=message):
        parse_params(params)


def _fetch_stage():
    spec = importlib.util.spec_from_file_location("fetch_stage", REPO_ROOT / "stages/fetch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_stack_in_an_npz_is_decompressed_once_by_the_fetch_stage(tmp_path, monkeypatch):
    """50 clips in one compressed member: the stage opens the member twice (its header, then
    its data), not once a clip, again for each digest, and again for a second discovery."""
    folder = tmp_path / "clips"
    folder.mkdir()
    stack = np.random.default_rng(2).integers(0, 256, (50, 4, 8, 8), dtype=np.uint8)
    np.savez_compressed(folder / "stack.npz", clips=stack)
    params = {"data": {"source": "folder", "folder": "clips", "frame_size": 8}}
    params["data"] |= {"n_frames": 4, "n_context": 2, "window_stride": 4}
    write_params(tmp_path, tiny_params(params | {"train": {"context_frames": 2}}))
    opened: list[str] = []
    real_open = zipfile.ZipFile.open

    def counting_open(self, name, *args, **kwargs):
        opened.append(name if isinstance(name, str) else name.filename)
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", counting_open)
    monkeypatch.chdir(tmp_path)
    raw = tmp_path / "raw"
    argv = ["fetch.py", "--params", "params.yaml", "--folder", "clips", "--radar-root", "r"]
    argv += ["--downloads", "dl", "--windows", str(raw / "w.npy"), "--digits", str(raw / "d.npy")]
    argv += ["--archives", str(raw / "archives")]
    monkeypatch.setattr(sys, "argv", [*argv, "--info", str(raw / "info.json")])
    _fetch_stage().main()
    assert np.load(raw / "w.npy").shape == (50, 4, 8, 8, 1)
    assert opened.count("clips.npy") <= 2, opened.count("clips.npy")


def test_fetch_takes_the_clips_already_found(tmp_path, monkeypatch):
    folder = tmp_path / "clips"
    folder.mkdir()
    np.save(folder / "a.npy", _frames(8)[..., 0])
    params = parse_params(tiny_params({"data": {"source": "folder", "frame_size": 16}}))
    found = find_clips(folder)
    monkeypatch.setattr("nextframe.data.folder.find_clips", pytest.fail)
    out = FetchPaths(tmp_path / "w.npy", tmp_path / "d.npy", tmp_path / "dl")
    info, summary = fetch_found_clips(params, folder, found, out)
    assert summary.endswith("1 clips -> 1 windows") and len(info["clips"]) == 1


def test_clips_sharing_a_frame_are_one_group_and_noted(tmp_path):
    """a and b share frames, b and c too (a and c not): one group, keyed by a content digest;
    d shares only a black frame with a (frames of one value join nothing), e nothing."""
    folder = tmp_path / "clips"
    folder.mkdir()
    frames = _frames(n_frames=16)
    black = np.zeros_like(frames[:1])
    np.save(folder / "a.npy", np.concatenate([black, frames[:5]]))
    write_clip(folder / "b", frames[3:9])  # PNG frames: other bytes than a's, same frames
    np.save(folder / "c.npy", frames[7:11])
    np.save(folder / "d.npy", np.concatenate([black, frames[11:14]]))
    np.save(folder / "e.npy", np.concatenate([frames[14:], frames[:2] // 2]))
    report = ingest(folder, tmp_path / "windows.npy", GREY_16, WINDOWS, progress=False)
    group = {clip["name"]: clip["group"] for clip in report.clips}
    digest = {clip["name"]: clip["sha256"] for clip in report.clips}
    joined = ["a.npy", "b", "c.npy"]
    assert {group[name] for name in joined} == {min(digest[name] for name in joined)}
    assert group["d.npy"] == digest["d.npy"] and group["e.npy"] == digest["e.npy"]
    note = "note: 3 clips share frames with another (1 groups, each kept to one split)"
    assert note in report.summary()
