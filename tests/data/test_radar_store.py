"""A radar archive's frame store: each frame on disk once, windows an index into it that reads
back the windows of pysteps' files byte for byte, files decoded in parallel and once (a growing
archive decodes only its new files), and a store that is not what its index says refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nextframe.data import radar_store
from nextframe.data.radar import ArchiveLayout, find_frames, layout_overrides, read_rain_rate
from nextframe.data.radar_store import CACHE_FOLDER, open_archive_windows
from nextframe.data.source import FetchPaths
from nextframe.data.sources import get_source
from nextframe.domains.rain.scale import RainScale
from nextframe.errors import NextframeError
from nextframe.params import parse_params
from nextframe.presets import merged

from ..helpers import RADAR_TINY, radar_archive, tiny_params


def radar_params(root: Path, **data):
    edits = merged(RADAR_TINY, {"data": {"radar": {"root": str(root)}, **data}})
    return parse_params(tiny_params(edits))


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return radar_archive(tmp_path_factory.mktemp("archive"), frames_per_event=9)


def fetch(out_dir: Path, params, root: Path, downloads: Path | None = None):
    out = FetchPaths(
        out_dir / "windows.npy",
        out_dir / "digits.npy",
        downloads or out_dir / "downloads",
        root,
        out_dir / "archives",
    )
    info, summary = get_source("radar").fetch(params, out_dir, out, lambda: None)
    return out, info, summary


def test_the_store_holds_each_frame_once_and_reads_back_every_window(archive, tmp_path):
    params = radar_params(archive, window_stride=1)  # 9 frames, 7 a window: 3 windows an event
    out, info, _ = fetch(tmp_path, params, archive)
    store = out.archives / info["file"]
    frame_bytes = 640 * 710
    assert info["stored_frames"] == 27
    # Each frame once (plus the .npy header), where whole windows took 7 frames each.
    assert store.stat().st_size - 27 * frame_bytes < 200
    windows = open_archive_windows(out.archives, info, 7)
    assert len(windows) == 9
    # Window by window, the frames of pysteps' files as fetch encoded them before the store.
    scale = RainScale.of(params.data.radar)
    layout = ArchiveLayout.resolve("mch", archive, layout_overrides(params.data.radar))
    files = find_frames(layout)
    for index in range(len(windows)):
        event, j = divmod(index, 3)
        expected = np.stack(
            [scale.encode(read_rain_rate(f, layout)[0]) for f in files[event * 9 + j :][:7]]
        )
        assert windows[index].tobytes() == expected[..., None].tobytes(), index


def test_a_growing_archive_decodes_only_its_new_files(archive, tmp_path):
    growing = tmp_path / "growing"
    shutil.copytree(archive, growing)
    day = sorted((growing / "radar" / "mch").iterdir())[-1]
    later = sorted(day.glob("*.gif"))[-2:]
    held_back = tmp_path / "held_back"
    held_back.mkdir()
    for frame in later:
        shutil.move(frame, held_back / frame.name)
    downloads = tmp_path / "downloads"
    params = radar_params(growing)
    _, first, summary = fetch(tmp_path / "a", params, growing, downloads)
    assert first["decoded"] == 25 and "25 files (25 decoded)" in summary
    for frame in later:  # the next files arrive
        shutil.move(held_back / frame.name, day / frame.name)
    _, second, summary = fetch(tmp_path / "b", params, growing, downloads)
    assert second["decoded"] == 2 and "27 files (2 decoded)" in summary
    # The same store as a fetch that decodes everything.
    _, _, _ = fetch(tmp_path / "c", params, growing)
    store_b = (tmp_path / "b" / "archives" / "0-mch.npy").read_bytes()
    assert store_b == (tmp_path / "c" / "archives" / "0-mch.npy").read_bytes()


def test_a_cache_entry_that_no_longer_matches_or_reads_is_decoded_again(archive, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(archive, copy)
    downloads = tmp_path / "downloads"
    params = radar_params(copy)
    _, _, _ = fetch(tmp_path / "a", params, copy, downloads)
    cached = set((downloads / CACHE_FOLDER).glob("*.npz"))
    assert len(cached) == 27
    sorted((copy / "radar" / "mch").rglob("*.gif"))[5].touch()  # changed since it was cached
    _, info, _ = fetch(tmp_path / "b", params, copy, downloads)
    assert info["decoded"] == 1
    [new_entry] = set((downloads / CACHE_FOLDER).glob("*.npz")) - cached
    new_entry.write_bytes(b"not a cache entry")  # corrupt
    _, info, _ = fetch(tmp_path / "c", params, copy, downloads)
    assert info["decoded"] == 1
    store = "archives/0-mch.npy"
    assert (tmp_path / "a" / store).read_bytes() == (tmp_path / "b" / store).read_bytes()
    assert (tmp_path / "b" / store).read_bytes() == (tmp_path / "c" / store).read_bytes()


def test_files_decoded_in_worker_processes_make_the_same_store(archive, tmp_path, monkeypatch):
    params = radar_params(archive)
    _, _, _ = fetch(tmp_path / "one", params, archive)
    monkeypatch.setattr(radar_store, "PARALLEL_FROM", 1)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    _, _, _ = fetch(tmp_path / "two", params, archive)
    store = "archives/0-mch.npy"
    assert (tmp_path / "one" / store).read_bytes() == (tmp_path / "two" / store).read_bytes()


def test_a_store_truncated_or_of_another_grid_than_its_index_is_one_line(archive, tmp_path):
    params = radar_params(archive)
    out, info, _ = fetch(tmp_path, params, archive)
    store = out.archives / info["file"]
    other_grid = json.loads(json.dumps(info))
    other_grid["grid"]["shape"] = [600, 710]
    with pytest.raises(NextframeError, match=r"0-mch.npy: frames of 640x710x1, its index says"):
        open_archive_windows(out.archives, other_grid, 7)
    np.save(store, np.load(store)[:20])  # whole frames, too few of them
    with pytest.raises(NextframeError, match=r"holds 20 frames, its index reads up to frame 25"):
        open_archive_windows(out.archives, info, 7)
    store.write_bytes(store.read_bytes()[:1000])  # cut inside a frame
    with pytest.raises(NextframeError, match=r"0-mch.npy: not a readable .npy array"):
        open_archive_windows(out.archives, info, 7)
