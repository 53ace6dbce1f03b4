"""A radar archive as the pipeline's windows: events split in time, never a window across an
event's end, test events sharing no frame with training, rainy crops preferred, and each bad
archive or param refused in one line with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nextframe.data.radar import Grid, coarsen, coarsening
from nextframe.data.radar_store import open_archive_windows
from nextframe.data.radar_windows import (
    draw_crops,
    periods_per_split,
    split_periods,
    write_radar_splits,
)
from nextframe.data.source import FetchPaths, SplitPaths, index_folder
from nextframe.data.sources import get_source
from nextframe.data.windows import WindowFile
from nextframe.domains.rain.scale import NO_DATA, RainScale
from nextframe.errors import NextframeError
from nextframe.params import parse_params
from nextframe.presets import merged

from ..helpers import RADAR_TINY, radar_archive, tiny_params


def radar_params(root: Path, radar: dict | None = None, **data):
    edits = merged(RADAR_TINY, {"data": {"radar": {"root": str(root), **(radar or {})}, **data}})
    return parse_params(tiny_params(edits))


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return radar_archive(tmp_path_factory.mktemp("archive"), frames_per_event=9)


def fetched(tmp: Path, params, root: Path):
    out = FetchPaths(
        tmp / "windows.npy", tmp / "digits.npy", tmp / "downloads", root, tmp / "archives"
    )
    info, summary = get_source(params.data.source).fetch(params, tmp, out, lambda: None)
    return out, info, summary


def stored(out: FetchPaths, info: dict, params) -> WindowFile:
    """The first archive's windows, read from its frame store."""
    return open_archive_windows(out.archives, info, params.data.n_frames)


def split(tmp: Path, params, out: FetchPaths, info: dict) -> tuple[dict[str, Path], str]:
    """Preprocess's radar splits of the first archive into `tmp`: their paths, the summary."""
    split_paths = {s: tmp / f"{s}.npy" for s in ("train", "val", "test")}
    summary = write_radar_splits(
        params,
        stored(out, info, params),
        info,
        split_paths,
        tmp / "train_digits.npy",
        tmp / "manifest.json",
    )
    return split_paths, summary


def test_each_event_is_cut_into_windows_of_its_own_frames(archive, tmp_path):
    params = radar_params(archive, window_stride=2)
    out, info, summary = fetched(tmp_path, params, archive)
    assert "3 events" in summary and "27 files" in summary
    windows = stored(out, info, params)
    assert windows.shape[1:] == (7, 640, 710, 1)
    # 9 frames an event, 7 a window, one every 2: starts 0 and 2, so 2 windows an event.
    assert [e["n_windows"] for e in info["events"]] == [2, 2, 2]
    assert [e["first_window"] for e in info["events"]] == [0, 2, 4]
    starts = [e["start"] for e in info["events"]]
    assert starts == sorted(starts) and starts[0].startswith("2015-05-15T15:45")
    first = windows[0]
    assert (first == NO_DATA).mean() == pytest.approx(0.31, abs=0.02)  # outside Switzerland's
    assert np.array_equal(windows[1][:5], first[2:])  # the event's frames, one stride on


def test_test_events_share_no_frame_with_training(archive, tmp_path):
    params = radar_params(archive)
    out, info, _ = fetched(tmp_path, params, archive)
    split_paths, summary = split(tmp_path, params, out, info)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    events = manifest["dataset"]["events"]
    assert events["test"] == [info["events"][-1]["start"]]  # the last in time
    assert set(events["train"]).isdisjoint(events["test"])
    assert max(events["train"]) < min(events["test"])
    assert "test 1 whole-domain windows" in summary
    test = WindowFile(split_paths["test"])
    assert test.shape[2:4] == (640, 710)  # the whole domain
    train = WindowFile(split_paths["train"])
    assert train.shape[2:] == (32, 32, 1)
    # Every training crop comes from a training event's frames, none from the test event's.
    test_frames = {test[0][t].tobytes() for t in range(test.shape[1])}
    whole = stored(out, info, params)
    train_windows = [whole[i] for i in range(info["events"][-1]["first_window"])]
    for index in range(len(train)):
        crop = train[index]
        assert crop[0].tobytes() not in test_frames
        assert any(_contains(window, crop) for window in train_windows)


def test_regions_are_stored_for_training_and_crops_for_validation(archive, tmp_path):
    """With `region`, training stores larger rainy regions (each epoch cuts a crop of each at
    a new place); validation keeps crops of the model's size; both from the same windows."""
    params = radar_params(archive, {"region": 48})
    out, info, _ = fetched(tmp_path, params, archive)
    split_paths, summary = split(tmp_path, params, out, info)
    assert "regions of 48 px (a crop of each at a new place each epoch)" in summary
    train, val = WindowFile(split_paths["train"]), WindowFile(split_paths["val"])
    assert train.shape[2:] == (48, 48, 1) and val.shape[2:] == (32, 32, 1)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["splits"]["train"]["shape"][2:] == [48, 48, 1]
    whole = stored(out, info, params)
    windows = [whole[i] for i in range(info["events"][-1]["first_window"])]
    assert all(any(_contains(w, train[i]) for w in windows) for i in range(len(train)))


def _contains(window: np.ndarray, crop: np.ndarray) -> bool:
    """Whether `crop` is one of the window's candidate crops (every crop // 4 pixels)."""
    size = crop.shape[1]
    step = size // 4
    height, width = window.shape[1:3]
    return any(
        np.array_equal(window[:, r : r + size, c : c + size], crop)
        for r in range(0, height - size + 1, step)
        for c in range(0, width - size + 1, step)
    )


def test_crops_prefer_rain_and_stay_inside_the_domain():
    scale = RainScale()
    codes = np.zeros((3, 64, 64), np.uint8)
    codes[:, :, 48:] = NO_DATA  # the right quarter is outside the domain
    codes[:, :16, :16] = 200  # heavy rain in the top-left corner only
    rng = np.random.default_rng(0)
    corners = [c for _ in range(50) for c in draw_crops(codes, 16, 1, rng, scale)]
    assert all(left + 16 <= 48 + 8 for _, left in corners)  # at least half inside
    # Of the 90 candidates, 12 (13 %) overlap the rain; most draws are one of them.
    assert sum(top < 16 and left < 16 for top, left in corners) > 35
    rng = np.random.default_rng(0)
    again = [c for _ in range(50) for c in draw_crops(codes, 16, 1, rng, scale)]
    assert corners == again  # the same seed, the same crops


def test_too_many_held_out_events_is_one_line(archive, tmp_path):
    params = radar_params(archive)
    _, info, _ = fetched(tmp_path, params, archive)
    edits = merged(RADAR_TINY, {"data": {"radar": {"test_events": 2, "val_events": 1}}})
    radar = parse_params(tiny_params(edits)).data.radar
    with pytest.raises(NextframeError, match=r"test_events \+ data.radar.val_events is 3 but"):
        periods_per_split(split_periods(info, radar, 7, 4), radar)


# One continuous day of a 6-minute network, as the shared BoM archive is: 61 frames, one event.
ONE_DAY = {
    "timestep_minutes": 6.0,
    "events": [
        {"start": "2018-06-16T00:00:00", "n_frames": 61, "first_window": 0, "n_windows": 23}
    ],
}


def block_radar(**radar):
    edits = merged(RADAR_TINY, {"data": {"n_frames": 16, "window_stride": 2, "radar": radar}})
    return parse_params(tiny_params(edits)).data.radar


def test_one_long_event_is_split_by_blocks_of_time_and_no_window_crosses_between_splits():
    radar = block_radar(block_hours=2, test_events=1, val_events=1)
    periods = split_periods(ONE_DAY, radar, n_frames=16, stride=2)
    # 2 h = 20 frames a block; windows of 16 frames start every 2: 3 lie inside each of the
    # first three blocks, the 14 across a block's end are left out, the 1-frame fourth block has
    # none.
    assert [p.windows for p in periods] == [[0, 1, 2], [10, 11, 12], [20, 21, 22]]
    assert periods[0].label == "2018-06-16T00:00:00/2018-06-16T01:54:00"
    splits = periods_per_split(periods, radar)
    assert [[p.label[:16] for p in splits[s]] for s in ("train", "val", "test")] == [
        ["2018-06-16T00:00"],
        ["2018-06-16T02:00"],
        ["2018-06-16T04:00"],
    ]

    def frames(split):
        return {2 * w + t for p in splits[split] for w in p.windows for t in range(16)}

    assert max(frames("train")) < min(frames("val")) <= max(frames("val")) < min(frames("test"))
    # the same params, the same blocks: deterministic
    assert split_periods(ONE_DAY, radar, 16, 2) == periods


def test_without_blocks_one_long_event_is_refused_in_one_line_that_names_the_count():
    radar = block_radar()
    with pytest.raises(NextframeError, match="is 1 but the archive holds 1 events"):
        periods_per_split(split_periods(ONE_DAY, radar, 16, 2), radar)


def test_a_block_shorter_than_a_window_is_one_line():
    with pytest.raises(NextframeError, match=r"block_hours \(1 h\) holds 10 frames 6 minutes"):
        split_periods(ONE_DAY, block_radar(block_hours=1), n_frames=16, stride=2)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"radar": {"crop": 800}}, "data.radar.crop must be <= the radar domain's 640x710"),
        ({"n_frames": 12}, "no event of the archive has data.n_frames \\(12\\) consecutive"),
    ],
)
def test_bad_archive_params_are_one_line_and_write_nothing(archive, tmp_path, data, message):
    params = radar_params(archive, **data)
    with pytest.raises(NextframeError, match=message):
        fetched(tmp_path, params, archive)
    assert not (tmp_path / "windows.npy").exists()
    assert not (tmp_path / "archives" / "0-mch.npy").exists()


def test_an_archive_of_nothing_names_the_pattern_and_folder(tmp_path):
    (tmp_path / "radar" / "mch").mkdir(parents=True)
    with pytest.raises(NextframeError, match=r"no file matching AQC%y%j%H%M\?_00005.801.gif"):
        fetched(tmp_path, radar_params(tmp_path), tmp_path)


def test_an_all_nan_frame_is_skipped_and_counted(archive, tmp_path):
    """A frame with no data (a radar outage) splits its event, counted in the summary."""
    import shutil

    from PIL import Image

    copy = tmp_path / "archive"
    shutil.copytree(archive, copy)
    day = sorted((copy / "radar" / "mch").iterdir())[0]
    frames = sorted(day.glob("*.gif"))
    Image.new("P", (710, 640), 255).save(frames[2])  # 255: no coverage in MeteoSwiss' palette
    params = radar_params(copy, n_frames=5, window_stride=5)
    _, info, summary = fetched(tmp_path / "out", params, copy)
    assert info["empty_frames"] == 1
    assert "1 all-NaN frames skipped" in summary
    # The first event becomes 2 + 6 frames: the 6 hold one window, the 2 none.
    assert [e["n_frames"] for e in info["events"]] == [6, 9, 9]
    assert info["too_short_events"] == 1


def test_lagrangian_crops_are_moved_windows_and_the_same_in_workers_or_not(
    archive, tmp_path, monkeypatch
):
    """A Lagrangian model's training crops come from windows moved into their rain's frame (so
    they differ from the Eulerian crops), and moving them in worker processes changes nothing."""
    written = {}
    runs = (("euler", "eulerian", 2), ("one", "lagrangian", 1), ("workers", "lagrangian", 2))
    for name, formulation, cores in runs:
        monkeypatch.setattr("os.cpu_count", lambda cores=cores: cores)
        params = radar_params(archive, {"formulation": formulation}, window_stride=4)
        out, info, _ = fetched(tmp_path / name, params, archive)
        paths = {s: tmp_path / name / f"{s}.npy" for s in ("train", "val", "test")}
        digits, manifest = tmp_path / name / "digits.npy", tmp_path / name / "manifest.json"
        summary = write_radar_splits(
            params, stored(out, info, params), info, paths, digits, manifest
        )
        written[name] = (paths["train"].read_bytes(), paths["test"].read_bytes(), summary)
    assert written["one"][:2] == written["workers"][:2]
    assert written["one"][0] != written["euler"][0]  # moved crops
    assert written["one"][1] == written["euler"][1]  # test windows stay as observed
    assert "in the frame of the rain's motion" in written["workers"][2]


# -- more archives: trained on together, scored apart --------------------------------------


@pytest.fixture(scope="module")
def two_networks(tmp_path_factory) -> Path:
    """MeteoSwiss's three events and FMI's two, 7 frames each (one window an event), under
    one root as pysteps-data lays them out."""
    root = tmp_path_factory.mktemp("networks")
    radar_archive(root, frames_per_event=7)
    return radar_archive(root, frames_per_event=7, network="fmi")


def split_two(tmp: Path, root: Path, archives: list | None = None, **fmi):
    """Fetch and split the first archive and FMI's (with `fmi` settings), or `archives`."""
    params = radar_params(
        root, {"archives": [{"network": "fmi", **fmi}] if archives is None else archives}
    )
    out = FetchPaths(
        tmp / "windows.npy", tmp / "digits.npy", tmp / "downloads", root, tmp / "archives"
    )
    info, fetch_summary = get_source("radar").fetch(params, tmp, out, lambda: None)
    index_folder(out.archives)  # as the stages do
    outputs = {s: tmp / f"{s}.npy" for s in ("train", "val", "test")}
    paths = SplitPaths(
        out.windows,
        out.digits,
        outputs,
        tmp / "train_digits.npy",
        tmp / "manifest.json",
        tmp / "archives",
        tmp / "test_archives",
    )
    summary = get_source("radar").split(params, info, paths, lambda: None)
    index_folder(paths.test_archives)
    more = json.loads((tmp / "test_archives" / "index.json").read_text())
    networks = ["mch", *(each["network"] for each in params.data.radar.model_dump()["archives"])]
    assert json.loads((tmp / "archives" / "index.json").read_text()) == [
        f"{i}-{network}.npy" for i, network in enumerate(networks)
    ]
    return info, fetch_summary, summary, json.loads(paths.manifest.read_text()), more


def test_more_archives_train_together_and_keep_their_own_test_windows(two_networks, tmp_path):
    info, fetch_summary, summary, manifest, (more,) = split_two(tmp_path, two_networks)
    assert "mch archive" in fetch_summary and "fmi archive" in fetch_summary
    fmi = info["archives"][0]
    assert fmi["grid"]["shape"] == [1226, 760] and fmi["timestep_minutes"] == 5
    assert len(fmi["events"]) == 2 and fmi["file"] == "1-fmi.npy"
    # Training crops: 2 MeteoSwiss events and FMI's first, 4 crops of each one window.
    assert manifest["splits"]["train"]["count"] == 3 * 4
    assert manifest["splits"]["test"]["count"] == 1  # MeteoSwiss's last event, whole
    assert more["label"] == "fmi" and more["count"] == 1 and more["trained"]
    assert more["events"]["test"] == [fmi["events"][-1]["start"]]
    test = WindowFile(tmp_path / "test_archives" / "1-fmi.npy")
    fmi_windows = open_archive_windows(tmp_path / "archives", fmi, 7)
    assert np.array_equal(test[0], fmi_windows[1])  # FMI's last event's window, byte for byte
    assert manifest["dataset"]["name"] == "radar_mch+fmi"
    assert "fmi: train 1 events, test 1 windows of 1 events" in summary


def test_an_archive_only_scored_is_all_test(two_networks, tmp_path):
    _, _, _, manifest, (more,) = split_two(tmp_path, two_networks, train=False)
    assert manifest["splits"]["train"]["count"] == 2 * 4  # MeteoSwiss's only
    assert more["count"] == 2 and more["events"]["train"] == [] and not more["trained"]
    # Nothing training reads names it: adding an archive only scored trains no model again.
    alone = tmp_path / "alone"
    alone.mkdir()
    _, _, _, manifest_alone, none = split_two(alone, two_networks, archives=[])
    assert manifest == manifest_alone and none == []


def test_archives_of_another_time_step_are_one_line_and_write_nothing(two_networks, tmp_path):
    with pytest.raises(NextframeError) as err:
        split_two(tmp_path, two_networks, timestep=10)
    message = str(err.value)
    assert message.startswith("data.radar.archives[0]: its frames are 10 minutes apart")
    assert "one training takes one time step" in message and "\n" not in message
    assert not (tmp_path / "archives" / "1-fmi.npy").exists()


def test_an_archive_listed_twice_is_one_line(tmp_path):
    edits = merged(RADAR_TINY, {"data": {"radar": {"archives": [{"network": "mch"}]}}})
    with pytest.raises(NextframeError, match=r"archives\[0\]: the mch archive is listed twice"):
        parse_params(tiny_params(edits))


def test_finer_pixels_are_averaged_as_pysteps_aggregates_them():
    rng = np.random.default_rng(0)
    rain = rng.gamma(0.5, 2.0, size=(9, 7)).astype(np.float32)
    rain[0, 0] = np.nan
    grid = Grid((9, 7), 0.5, "+proj=stere", (0.0, 0.0, 3.5, 4.5))
    assert coarsening(grid, 1.0, "data.radar.archives[0]") == 2
    coarse, coarse_grid = coarsen(rain, grid, 2)
    assert coarse.shape == (4, 3) and coarse_grid.pixel_km == 1.0
    assert np.isnan(coarse[0, 0])  # a block with no data has none
    assert coarse[1, 2] == pytest.approx(rain[2:4, 4:6].mean())
    assert coarse_grid.corners == (0.0, 0.5, 3.0, 4.5)  # the southern row, eastern column left
    with pytest.raises(NextframeError, match=r"archives\[0\]: its 0.5 km pixels do not make"):
        coarsening(grid, 1.25, "data.radar.archives[0]")
