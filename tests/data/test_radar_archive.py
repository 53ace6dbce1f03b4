"""Radar archives in pysteps' layouts: found, split at gaps, read as mm/h, bad ones refused."""

from __future__ import annotations

import dataclasses
import itertools
import shutil
import subprocess
import sys
import warnings
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nextframe.data.radar import (
    ArchiveLayout,
    Grid,
    RadarFrame,
    check_same_grid,
    find_frames,
    is_empty,
    read_rain_rate,
    split_sequences,
)
from nextframe.errors import NextframeError

PYSTEPS_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "pysteps-data"
MCH_DAY = "radar/mch/20150515"


@pytest.fixture
def pysteps_data() -> Path:
    if not (PYSTEPS_DATA / "radar").is_dir():
        pytest.skip(f"no pysteps example data at {PYSTEPS_DATA}")
    return PYSTEPS_DATA


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_mch_archive_is_its_events_in_time_order(pysteps_data):
    layout = ArchiveLayout.resolve("mch", pysteps_data, {})
    frames = find_frames(layout)
    assert [f.time for f in frames] == sorted(f.time for f in frames)
    sequences = split_sequences(frames, layout.timestep_minutes)
    # The July event's last file (2016-07-12 00:00) lies in 20160711/, where pysteps' own
    # search (path format %Y%m%d) does not look for it: it is not part of the archive.
    assert [len(s) for s in sequences] == [40, 39, 40]
    assert [s[0].time for s in sequences] == [
        datetime(2015, 5, 15, 15, 45),
        datetime(2016, 7, 11, 20, 45),
        datetime(2017, 1, 31, 9, 45),
    ]
    for sequence in sequences:
        steps = {b.time - a.time for a, b in itertools.pairwise(sequence)}
        assert steps == {timedelta(minutes=5)}
    misplaced = pysteps_data / "radar/mch/20160711/AQC161940000V_00005.801.gif"
    assert misplaced.is_file() and misplaced not in {f.path for f in frames}


def test_mch_frame_is_rain_rate_with_nan_outside_the_domain(pysteps_data):
    layout = ArchiveLayout.resolve("mch", pysteps_data, {})
    rain, grid = read_rain_rate(find_frames(layout)[20], layout)
    assert rain.shape == (640, 710) and rain.dtype == np.float32
    assert 0.25 < np.isnan(rain).mean() < 0.35  # outside Switzerland's radar coverage
    assert np.nanmin(rain) >= 0 and np.nanmax(rain) > 1
    assert grid.shape == (640, 710) and grid.pixel_km == 1.0
    assert grid.corners == (255.0, -160.0, 965.0, 480.0)
    assert "somerc" in grid.projection
    assert not is_empty(rain)


@pytest.mark.parametrize(
    ("network", "lengths", "shape", "pixel_km"),
    [("fmi", [40, 40], (1226, 760), 1.0), ("bom", [61], (512, 512), 0.5)],
)
def test_fmi_and_bom_archives_found_and_read(pysteps_data, network, lengths, shape, pixel_km):
    layout = ArchiveLayout.resolve(network, pysteps_data, {})
    frames = find_frames(layout)
    assert [len(s) for s in split_sequences(frames, layout.timestep_minutes)] == lengths
    rain, grid = read_rain_rate(frames[len(frames) // 2], layout)
    assert rain.shape == shape == grid.shape and rain.dtype == np.float32
    finite = rain[np.isfinite(rain)]
    assert finite.size > 0 and finite.min() >= 0 and finite.max() > 0.1
    assert grid.pixel_km == pytest.approx(pixel_km, rel=1e-3)


def test_overrides_read_an_archive_of_another_layout(pysteps_data, tmp_path):
    for gif in sorted((pysteps_data / MCH_DAY).glob("*.gif"))[:3]:
        time = datetime.strptime(gif.name[3:12], "%y%j%H%M")
        shutil.copy(gif, tmp_path / f"swiss_{time:%Y%m%d_%H%M}.gif")
    overrides = {"root_path": "", "path_fmt": "", "fn_pattern": "swiss_%Y%m%d_%H%M"}
    layout = ArchiveLayout.resolve("mch", tmp_path, {**overrides, "timestep": None})
    assert layout.folder == tmp_path and layout.timestep_minutes == 5
    frames = find_frames(layout)
    assert [f.time for f in frames] == [datetime(2015, 5, 15, 15, 45 + 5 * i) for i in range(3)]
    assert len(split_sequences(frames, layout.timestep_minutes)) == 1
    assert read_rain_rate(frames[0], layout)[0].shape == (640, 710)
    assert layout.to_config()["fn_pattern"] == "swiss_%Y%m%d_%H%M"
    assert layout.to_config()["folder"] == str(tmp_path)


def test_unknown_network_lists_the_radar_networks():
    with pytest.raises(NextframeError) as error:
        ArchiveLayout.resolve("xyz", Path("."), {})
    message = one_line(error)
    assert message.startswith("data.radar.network: unknown network 'xyz' (known: bom, dwd, fmi")
    assert "mch" in message and "_nwp" not in message


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"importer": "nope"}, "data.radar.importer"),
        ({"fn_pattern": "AQC%b"}, "data.radar.fn_pattern"),
        ({"timestep": 0}, "data.radar.timestep"),
    ],
)
def test_bad_override_names_its_param(overrides, param):
    with pytest.raises(NextframeError) as error:
        ArchiveLayout.resolve("mch", Path("."), overrides)
    assert one_line(error).startswith(f"{param}: ")


def test_no_matching_file_names_pattern_and_folder(tmp_path):
    (tmp_path / "radar/mch/20150515").mkdir(parents=True)
    (tmp_path / "radar/mch/20150515/notes.txt").write_text("no radar here")
    layout = ArchiveLayout.resolve("mch", tmp_path, {})
    with pytest.raises(NextframeError) as error:
        find_frames(layout)
    message = one_line(error)
    assert message.startswith("data.radar.root: no file matching AQC%y%j%H%M?_00005.801.gif")
    assert str(tmp_path / "radar/mch") in message and "%Y%m%d" in message


def test_missing_archive_folder_is_one_line(tmp_path):
    with pytest.raises(NextframeError) as error:
        find_frames(ArchiveLayout.resolve("fmi", tmp_path, {}))
    assert str(tmp_path / "radar/fmi/pgm") in one_line(error)


def test_truncated_gif_is_one_line_naming_the_file(pysteps_data, tmp_path):
    real = sorted((pysteps_data / MCH_DAY).glob("*.gif"))[0]
    truncated = tmp_path / MCH_DAY / real.name
    truncated.parent.mkdir(parents=True)
    truncated.write_bytes(real.read_bytes()[:200])
    layout = ArchiveLayout.resolve("mch", tmp_path, {})
    [frame] = find_frames(layout)
    with pytest.raises(NextframeError) as error:
        read_rain_rate(frame, layout)
    assert one_line(error).startswith(f"{truncated}: cannot read mch_gif radar file (")


MCH_GRID = Grid((640, 710), 1.0, "+proj=somerc", (255.0, -160.0, 965.0, 480.0))


def test_frame_of_another_grid_is_refused():
    check_same_grid(dataclasses.replace(MCH_GRID), MCH_GRID, Path("a.gif"))
    bom = Grid((512, 512), 0.5, "+proj=aea", (-128.0, -127.5, 127.5, 128.0))
    with pytest.raises(NextframeError) as error:
        check_same_grid(bom, MCH_GRID, Path("b.nc"))
    assert one_line(error) == (
        "b.nc: frame on another grid (512x512 at 0.5 km, expected 640x710 at 1 km)"
    )
    shifted = dataclasses.replace(MCH_GRID, corners=(256.0, -160.0, 966.0, 480.0))
    with pytest.raises(NextframeError, match="corners 256, -160, 966, 480"):
        check_same_grid(shifted, MCH_GRID, Path("c.gif"))


def test_split_sequences_starts_anew_at_a_gap_or_repeat():
    start = datetime(2020, 1, 1)
    minutes = [0, 5, 10, 20, 25, 25]
    frames = [RadarFrame(start + timedelta(minutes=m), Path(f"{m}.gif")) for m in minutes]
    sequences = split_sequences(frames, 5)
    assert [[f.path.name for f in s] for s in sequences] == [
        ["0.gif", "5.gif", "10.gif"],
        ["20.gif", "25.gif"],
        ["25.gif"],
    ]
    assert split_sequences([], 5) == []


def test_all_nan_frame_is_empty_a_dry_one_is_not():
    assert is_empty(np.full((4, 4), np.nan, np.float32))
    assert not is_empty(np.zeros((4, 4), np.float32))


def test_frame_without_coverage_reads_as_empty_without_warnings(tmp_path):
    gif = tmp_path / MCH_DAY / "AQC151351545F_00005.801.gif"
    gif.parent.mkdir(parents=True)
    Image.new("P", (710, 640), 255).save(gif)  # 255: no coverage in MeteoSwiss' palette
    layout = ArchiveLayout.resolve("mch", tmp_path, {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rain, grid = read_rain_rate(find_frames(layout)[0], layout)
    assert is_empty(rain) and grid.shape == (640, 710)


def test_pysteps_is_imported_late_and_silently():
    code = (
        "import sys; from pathlib import Path; import nextframe.data.radar as radar; "
        "assert 'pysteps' not in sys.modules; radar.ArchiveLayout.resolve('mch', Path('.'), {})"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
