"""A radar archive's frame store: each frame once, windows an index into it.

Fetch reads an archive (`nextframe.data.radar`), splits it into events where frames are not
one time step apart (an all-NaN frame is skipped, and so splits its event too), and appends
every frame of an event at least one window long to a frame store: a (N, H, W, 1) uint8 `.npy`
of rain codes (`nextframe.domains.rain.scale`) over the whole domain, beside an index (the
`info` preprocess reads: each event's first stored frame, its frames and its windows of
`data.n_frames` frames, one starting every `data.window_stride`). A window is its first
frame's index; `open_archive_windows` reads them back as a `WindowFile` reads windows, so a
frame is on disk once however many windows hold it. No window crosses an event's end.

Files are decoded in worker processes, one per core, in order, a few at a time (memory stays
flat in the archive's length), and each decoded frame is kept in a cache outside DVC's
outputs (`<downloads>/radar-frames`), keyed by the file's path, size and modification time
and by what decoding depends on: a growing archive decodes only the files it has not seen,
and an entry that does not match its file, or cannot be read, is decoded again, not trusted.
"""

from __future__ import annotations

import functools
import hashlib
import json
import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nextframe.data.radar import (
    ArchiveLayout,
    Grid,
    RadarFrame,
    check_same_grid,
    coarsen,
    coarsening,
    find_frames,
    is_empty,
    layout_overrides,
    read_rain_rate,
    split_sequences,
)
from nextframe.data.windows import INDEX, FrameWindows
from nextframe.domains.rain.scale import RainScale
from nextframe.errors import NextframeError
from nextframe.io import atomic_path, npy_appender, write_json
from nextframe.params import ArchiveParams, Params, RadarParams

CACHE_FOLDER = "radar-frames"  # under the downloads folder: kept between runs, not an output
# Files are decoded in worker processes from this many on: a worker takes ~2 s to start
# (pysteps' import), a file ~20-60 ms to decode.
PARALLEL_FROM = 100
_CACHE_VERSION = 1  # bump when what a cache entry holds changes


@dataclass(frozen=True)
class Decoding:
    """What turns an archive's file into the codes fetch stores: the layout it is read with,
    the rain scale, and how many of its pixels make one (`coarsen`)."""

    layout: ArchiveLayout
    scale: RainScale
    factor: int

    def key(self, path: Path) -> str:
        """A cache key: the file (path, size, modification time) and everything its codes
        depend on."""
        stat = path.stat()
        what = {
            "version": _CACHE_VERSION,
            "path": str(path.resolve()),
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "importer": self.layout.importer,
            "importer_kwargs": self.layout.importer_kwargs,
            "scale": self.scale.to_config(),
            "factor": self.factor,
        }
        text = json.dumps(what, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Decoded:
    """One file: its codes on the store's grid (None for an all-NaN frame) and its own grid."""

    codes: np.ndarray | None
    grid: Grid
    from_cache: bool


def _decode(frame: RadarFrame, decoding: Decoding) -> Decoded:
    rain, grid = read_rain_rate(frame, decoding.layout)
    if is_empty(rain):
        return Decoded(None, grid, False)
    coarse, _ = coarsen(rain, grid, decoding.factor)
    return Decoded(decoding.scale.encode(coarse), grid, False)


def _cached(entry: Path) -> Decoded | None:
    """A cache entry, or None where it is missing or unreadable (decoded again)."""
    try:
        with np.load(entry, allow_pickle=False) as stored:
            codes = stored["codes"]
            numbers = [float(v) for v in stored["grid"]]
            shape = tuple(int(v) for v in stored["shape"])
            projection = str(stored["projection"])
    except (OSError, ValueError, KeyError, EOFError):
        return None
    if codes.dtype != np.uint8 or len(numbers) != 5 or len(shape) != 2:
        return None
    grid = Grid(shape, numbers[0], projection, tuple(numbers[1:]))
    return Decoded(codes if codes.ndim == 2 else None, grid, True)


def _store(entry: Path, decoded: Decoded) -> None:
    grid = decoded.grid
    codes = decoded.codes if decoded.codes is not None else np.zeros((0,), np.uint8)
    # Compressed: rain codes are mostly the dry and no-data codes (a MeteoSwiss frame ~20x).
    with atomic_path(entry) as tmp, tmp.open("wb") as file:
        np.savez_compressed(
            file,
            codes=codes,
            grid=np.array([grid.pixel_km, *grid.corners], np.float64),
            shape=np.array(grid.shape, np.int64),
            projection=np.array(grid.projection),
        )


def _decode_or_cached(frame: RadarFrame, decoding: Decoding, cache: Path | None) -> Decoded:
    """The file's codes from the cache if an entry matches it, else decoded (and cached)."""
    if cache is None:
        return _decode(frame, decoding)
    entry = cache / f"{decoding.key(frame.path)}.npz"
    found = _cached(entry) if entry.exists() else None
    if found is not None:
        return found
    decoded = _decode(frame, decoding)
    _store(entry, decoded)
    return decoded


def decoded_frames(
    frames: Sequence[RadarFrame], decoding: Decoding, cache: Path | None, workers: int
) -> Iterator[Decoded]:
    """Each file decoded (or found in the cache), in order: in `workers` processes a few files
    at a time, or in this one (workers <= 1, or fewer than `PARALLEL_FROM` files)."""
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    task = functools.partial(_decode_or_cached, decoding=decoding, cache=cache)
    if workers <= 1 or len(frames) < PARALLEL_FROM:
        yield from map(task, frames)
        return
    spawn = multiprocessing.get_context("spawn")  # no state of this process is forked
    with ProcessPoolExecutor(workers, mp_context=spawn) as pool:
        step = 4 * workers
        for start in range(0, len(frames), step):
            yield from pool.map(task, frames[start : start + step])


class _EventFrames:
    """Appends an event's frames to the store once it is a window long (its first frames wait,
    at most a window's worth), so an event shorter than a window stores nothing; counts
    events, frames and windows as they arrive."""

    def __init__(self, appender, n_frames: int, stride: int):
        self.appender, self.n_frames, self.stride = appender, n_frames, stride
        self.events: list[dict] = []
        self.too_short = 0
        self.n_windows = 0
        self.n_stored = 0
        self._waiting: list[np.ndarray] = []
        self._times: list = []

    def add(self, time, codes: np.ndarray) -> None:
        self._times.append(time)
        if len(self._times) < self.n_frames:
            self._waiting.append(codes)
            return
        for frame in [*self._waiting, codes]:
            self.appender.append(frame[None, ..., None])
        self._waiting = []

    def end_event(self) -> None:
        count = len(self._times)
        if count >= self.n_frames:
            n_windows = (count - self.n_frames) // self.stride + 1
            self.events.append(
                {
                    "start": self._times[0].isoformat(),
                    "end": self._times[-1].isoformat(),
                    "n_frames": count,
                    "first_frame": self.n_stored,
                    "first_window": self.n_windows,
                    "n_windows": n_windows,
                }
            )
            self.n_stored += count
            self.n_windows += n_windows
        elif count:
            self.too_short += 1
        self._waiting, self._times = [], []


def archive_file(index: int, network: str) -> str:
    """The name of archive `index`'s frame store (0: `data.radar`'s own, i + 1:
    `data.radar.archives[i]`) and of its test windows, in their folders."""
    return f"{index}-{network}.npy"


def write_archive_frames(
    params: Params,
    root: Path,
    out: Path,
    cache: Path | None,
    archive: RadarParams | ArchiveParams | None = None,
    param: str = "data.radar",
    like: dict | None = None,
) -> tuple[dict, str]:
    """Read the archive under `root` that `archive` describes (default: `data.radar`'s own;
    `param`: where params name it) and store every event's frames once in `out`; (its index
    for preprocess, a summary line). `like`: the first archive's index, whose time step this
    one must share and whose pixel size its frames are brought to (`coarsen`)."""
    data = params.data
    archive = archive or data.radar
    scale = RainScale.of(data.radar)
    layout = ArchiveLayout.resolve(archive.network, root, layout_overrides(archive), param)
    if like is not None and layout.timestep_minutes != like["timestep_minutes"]:
        raise NextframeError(
            f"{param}: its frames are {layout.timestep_minutes:g} minutes apart, the first "
            f"archive's (data.radar, {like['layout']['network']}) "
            f"{like['timestep_minutes']:g}: one training takes one time step"
        )
    frames = find_frames(layout)
    # The first file's grid, through the cache (the same entry as the store's where factor 1).
    probe = _decode_or_cached(frames[0], Decoding(layout, scale, 1), cache)
    raw_grid = probe.grid
    factor = 1 if like is None else coarsening(raw_grid, like["grid"]["pixel_km"], param)
    grid = coarsen(np.zeros(raw_grid.shape, np.float32), raw_grid, factor)[1]
    height, width = grid.shape
    if data.radar.crop > min(height, width):
        raise NextframeError(
            f"params.yaml: data.radar.crop must be <= the radar domain's {height}x{width} "
            f"pixels ({param}), got {data.radar.crop}"
        )
    decoding = Decoding(layout, scale, factor)
    workers = min(os.cpu_count() or 1, len(frames))
    empty_frames, decoded = 0, int(not probe.from_cache)
    with npy_appender(out, (height, width, 1)) as appender:
        cutter = _EventFrames(appender, data.n_frames, data.window_stride)
        sequences = split_sequences(frames, layout.timestep_minutes)
        ordered = [frame for sequence in sequences for frame in sequence]
        gaps = set(np.cumsum([len(sequence) for sequence in sequences[:-1]]).tolist())
        each_decoded = decoded_frames(ordered, decoding, cache, workers)
        for i, (frame, each) in enumerate(zip(ordered, each_decoded, strict=True)):
            if i in gaps:
                cutter.end_event()
            decoded += not each.from_cache
            check_same_grid(each.grid, raw_grid, frame.path)
            if each.codes is None:
                empty_frames += 1
                cutter.end_event()
            else:
                cutter.add(frame.time, each.codes)
        cutter.end_event()
        if not cutter.events:
            raise NextframeError(
                f"{layout.folder}: no event of the archive has data.n_frames "
                f"({data.n_frames}) consecutive frames {layout.timestep_minutes:g} minutes "
                f"apart ({cutter.too_short} shorter events)"
            )
    info = {
        "source": "radar",
        "layout": layout.to_config(),
        "grid": {"shape": [height, width], "pixel_km": grid.pixel_km},
        "timestep_minutes": layout.timestep_minutes,
        "window_stride": data.window_stride,  # how the windows were cut: what preprocess splits
        "n_frames": data.n_frames,
        "files": len(frames),
        "decoded": decoded,  # the rest came from the cache
        "stored_frames": cutter.n_stored,
        "empty_frames": empty_frames,
        "too_short_events": cutter.too_short,
        "events": cutter.events,
    }
    notes = [
        f"{len(frames)} files ({decoded} decoded)",
        f"{len(cutter.events)} events",
        f"{cutter.n_windows} windows",
    ]
    if cutter.too_short:
        notes.append(f"{cutter.too_short} events shorter than a window")
    if empty_frames:
        notes.append(f"{empty_frames} all-NaN frames skipped")
    where = f"{archive.network} archive {layout.folder}"
    coarser = f" (its {raw_grid.pixel_km:g} km pixels {factor}x{factor})" if factor > 1 else ""
    summary = f"{where}: {', '.join(notes)} of {height}x{width} at {grid.pixel_km:g} km{coarser}"
    return info, summary


def write_all_archives(
    params: Params, root: Path, folder: Path, cache: Path | None
) -> tuple[dict, str]:
    """`data.radar`'s archive and each of `data.radar.archives`, one frame store each in
    `folder` (`archive_file`), listed in its index; (the first archive's info, holding the
    others' under `archives`, and a summary line)."""
    folder.mkdir(parents=True, exist_ok=True)
    first_name = archive_file(0, params.data.radar.network)
    info, summary = write_archive_frames(params, root, folder / first_name, cache)
    info["file"] = first_name
    infos, summaries = [], [summary]
    for index, archive in enumerate(params.data.radar.archives):
        param = f"data.radar.archives[{index}]"
        name = archive_file(index + 1, archive.network)
        each, line = write_archive_frames(params, root, folder / name, cache, archive, param, info)
        infos.append({**each, "file": name})
        summaries.append(line)
    if infos:
        info["archives"] = infos
    write_json(folder / INDEX, [first_name, *(each["file"] for each in infos)])
    return info, "; ".join(summaries)


def window_starts(info: dict) -> list[int]:
    """Each window's first frame in the store, in window order (`first_window` numbering)."""
    starts = []
    for event in info["events"]:
        stride = info["window_stride"]
        starts += [event["first_frame"] + j * stride for j in range(event["n_windows"])]
    return starts


def open_archive_windows(folder: Path, info: dict, n_frames: int) -> FrameWindows:
    """The windows of the archive whose index is `info`, read from its frame store in
    `folder`; one line if the store is not what its index says (frames, grid)."""
    path = folder / info["file"]
    if n_frames != info["n_frames"]:
        raise NextframeError(
            f"{path}: fetched for windows of {info['n_frames']} frames, data.n_frames is "
            f"{n_frames} (run fetch again)"
        )
    windows = FrameWindows(path, window_starts(info), n_frames)
    height, width = info["grid"]["shape"]
    if windows.shape[2:] != (height, width, 1):
        raise NextframeError(
            f"{path}: frames of {windows.shape[2]}x{windows.shape[3]}x{windows.shape[4]}, its "
            f"index says {height}x{width}x1 (run fetch again)"
        )
    return windows
