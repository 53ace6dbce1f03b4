"""Radar archives as the pipeline's windows: whole composites per event, split by event in
time, and rainy training crops.

Fetch stores each archive's frames once (`nextframe.data.radar_store`); its windows are an
index into them. Preprocess assigns whole events to splits, in time order: the last
`test_events` are test, the `val_events` before them validation, the rest training (each of
`data.radar.archives` alike, or all test). Test keeps whole-domain windows
(evaluation and render read the whole composite, so rain can enter from outside any crop);
training stores `region` x `region` regions (`crop` by default), `crops_per_window` of each
training window (see `draw_crops`), from which training cuts a `crop` x `crop` crop at a new
place each epoch (`nextframe.data.dataset.ClipBatches`); validation crops come from the
validation events, or with `val_events: 0` from the training events (a separate draw of a
quarter as many: it tracks the fit, it is not a held-out score).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from nextframe.data.radar_store import open_archive_windows
from nextframe.data.source import NO_DIGITS
from nextframe.data.splits import SPLITS
from nextframe.data.windows import INDEX, WindowFile
from nextframe.domains.rain.lagrangian import window_to_lagrangian
from nextframe.domains.rain.scale import NO_DATA, RainScale, decode_unit
from nextframe.errors import NextframeError
from nextframe.io import npy_appender, save_npy, write_json, write_npy_in_chunks
from nextframe.params import Params, RadarParams

# Candidate crops start every crop // CANDIDATE_STEPS pixels; a crop needs this share of its
# pixels inside the radar's domain.
CANDIDATE_STEPS = 4
MIN_INSIDE = 0.5
# A candidate's chance: this floor plus the share of its pixels raining >= RAINY_MMH.
DRY_WEIGHT = 0.01
RAINY_MMH = 1.0
VAL_SHARE = 4  # validation crops from training events: crops_per_window // 4 a window
_VAL_STREAM = 0x76616C  # the val draw from training events never repeats the training draw


@dataclass(frozen=True)
class Period:
    """What the split assigns as a whole: an event, or with `data.radar.block_hours` one block of
    time of an event. `label`: the event's start time, or the block's first and last frame
    times (ISO 8601, `start/end`); `windows`: the indices of the windows that lie inside it."""

    label: str
    windows: list[int]


def split_periods(info: dict, radar: RadarParams, n_frames: int, stride: int) -> list[Period]:
    """The archive's events, or their blocks of `block_hours` (counted from each event's first
    frame), in time order. A window lies inside one block or is left out: a window across a
    block's end belongs to no split, so no window and no motion context (a window's own first
    frames) crosses from one split into another. A block without a whole window is dropped."""
    periods = []
    if radar.block_hours is None:
        for event in info["events"]:
            first = event["first_window"]
            periods.append(Period(event["start"], list(range(first, first + event["n_windows"]))))
        return periods
    step = info["timestep_minutes"]
    block_frames = round(radar.block_hours * 60 / step)
    if block_frames < n_frames:
        raise NextframeError(
            f"params.yaml: data.radar.block_hours ({radar.block_hours:g} h) holds "
            f"{block_frames} frames {step:g} minutes apart, fewer than a window "
            f"(data.n_frames {n_frames}): no window would lie inside a block"
        )
    for event in info["events"]:
        by_block: dict[int, list[int]] = {}
        for j in range(event["n_windows"]):
            first_frame = j * stride
            block = first_frame // block_frames
            if (first_frame + n_frames - 1) // block_frames == block:
                by_block.setdefault(block, []).append(event["first_window"] + j)
        start = datetime.fromisoformat(event["start"])
        for block, windows in sorted(by_block.items()):
            first = block * block_frames
            last = min(first + block_frames, event["n_frames"]) - 1
            times = [(start + timedelta(minutes=i * step)).isoformat() for i in (first, last)]
            periods.append(Period("/".join(times), windows))
    return periods


def periods_per_split(
    periods: list[Period], radar: RadarParams, param: str = "data.radar"
) -> dict[str, list[Period]]:
    """Which periods each split holds, in time order: test last, val before it (`param`:
    which archive, for the error)."""
    held_out = radar.test_events + radar.val_events
    if held_out >= len(periods):
        what = "events" if radar.block_hours is None else "blocks of data.radar.block_hours"
        archive = "the archive" if param == "data.radar" else f"{param}"
        raise NextframeError(
            f"params.yaml: data.radar.test_events + data.radar.val_events is {held_out} but "
            f"{archive} holds {len(periods)} {what} (training needs at least one)"
        )
    n_train = len(periods) - held_out
    return {
        "train": periods[:n_train],
        "val": periods[n_train : n_train + radar.val_events],
        "test": periods[n_train:][radar.val_events :],
    }


def rainy_weights(codes: np.ndarray, crop: int, scale: RainScale) -> tuple[np.ndarray, list]:
    """Each candidate crop's chance (sums to 1) and its top-left corner, for a window of rain
    codes (T, H, W): candidates every crop // 4 pixels with at least half their pixels inside
    the domain, weighted by 0.01 plus the share of their pixels raining >= 1 mm/h over the
    window's frames (box sums over integral images)."""
    _, height, width = codes.shape
    rainy_code = round(float(scale.to_unit(np.float64(RAINY_MMH))) * 254)
    inside = (codes[0] != NO_DATA).astype(np.float64)
    rainy = ((codes >= rainy_code) & (codes != NO_DATA)).mean(axis=0)

    def box_sums(values: np.ndarray, tops: np.ndarray, lefts: np.ndarray) -> np.ndarray:
        integral = np.pad(values.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        t, left = tops[:, None], lefts[None, :]
        b, r = t + crop, left + crop
        return integral[b, r] - integral[t, r] - integral[b, left] + integral[t, left]

    step = max(1, crop // CANDIDATE_STEPS)
    tops = np.arange(0, height - crop + 1, step)
    lefts = np.arange(0, width - crop + 1, step)
    area = crop * crop
    inside_share = box_sums(inside, tops, lefts) / area
    weights = np.where(
        inside_share >= MIN_INSIDE, DRY_WEIGHT + box_sums(rainy, tops, lefts) / area, 0
    )
    corners = [(int(t), int(left)) for t in tops for left in lefts]
    weights = weights.ravel()
    total = weights.sum()
    return (weights / total if total > 0 else weights), corners


def draw_crops(
    codes: np.ndarray, crop: int, count: int, rng: np.random.Generator, scale: RainScale
) -> list[tuple[int, int]]:
    """`count` top-left corners of crops of one window (T, H, W), rainy ones preferred
    (`rainy_weights`), without repeats while candidates last; none if no candidate lies
    inside the domain."""
    weights, corners = rainy_weights(codes, crop, scale)
    candidates = int(np.count_nonzero(weights))
    if candidates == 0:
        return []
    picked = rng.choice(len(corners), size=min(count, candidates), replace=False, p=weights)
    return [corners[i] for i in np.sort(picked)]


def window_in_rain_frame(codes: np.ndarray, scale: RainScale, n_context: int):
    """A window of rain codes (T, H, W) moved into the frame of its rain (`domains.rain.
    lagrangian`), as rain codes again; and whether its context had motion to find."""
    moved, found = window_to_lagrangian(decode_unit(codes), scale.decode_mmh(codes), n_context)
    return scale.encode(scale.to_mmh(moved)), found


@dataclass
class _CropDraw:
    """One split's crops: from which windows, how many of each, with which random stream."""

    windows: list[int]
    count: int
    rng: np.random.Generator
    size: int  # the crops' side
    appender: Any = None


def _moved_window(windows: WindowFile, index: int, scale: RainScale, n_context: int):
    """Window `index` of `windows` in its rain's frame (a worker's task)."""
    return window_in_rain_frame(windows[index][..., 0], scale, n_context)


def _windows_to_draw(
    windows: WindowFile, indices: list[int], scale: RainScale, lagrangian_context: int | None
) -> Iterator[tuple[np.ndarray, bool]]:
    """Each window (T, H, W) in `indices` order and whether it had motion to find: as read, or
    moved into its rain's frame in worker processes, one per core (the motion and advection
    are numpy on one core each; the order is kept)."""
    if lagrangian_context is None:
        for index in indices:
            yield windows[index][..., 0], True
        return
    workers = min(len(indices), os.cpu_count() or 1)
    if workers <= 1:
        for index in indices:
            yield _moved_window(windows, index, scale, lagrangian_context)
        return
    context = multiprocessing.get_context("spawn")  # no state of this process is forked
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        task = functools.partial(_moved_window, windows, scale=scale, n_context=lagrangian_context)
        # A few windows ahead of the crops at a time: memory stays flat in the archive's length.
        for start in range(0, len(indices), 2 * workers):
            yield from pool.map(task, indices[start : start + 2 * workers])


def _draw_all_crops(
    windows: WindowFile,
    draws: dict[str, _CropDraw],
    scale: RainScale,
    lagrangian_context: int | None,
) -> int:
    """Append each split's crops to its appender, reading (and, for a Lagrangian model, moving
    into the rain's frame, `lagrangian_context` frames of context) every window once even where
    two splits draw from it; each split's stream draws in window order, as it would alone.
    Returns how many moved windows had no motion to find (an all-dry context, left still)."""
    still = 0
    indices = sorted({i for draw in draws.values() for i in draw.windows})
    moved = _windows_to_draw(windows, indices, scale, lagrangian_context)
    for index, (window, found) in zip(indices, moved, strict=True):
        still += not found
        for draw in draws.values():
            if index in draw.windows:
                size = draw.size
                for top, left in draw_crops(window, size, draw.count, draw.rng, scale):
                    picked = window[:, top : top + size, left : left + size]
                    draw.appender.append(picked[None, ..., None])
    return still


@dataclass
class _SplitArchive:
    """One archive as preprocess splits it: its windows and which of them each split holds."""

    label: str  # the network, as reports name the archive
    windows: WindowFile
    periods: list[Period]
    splits: dict[str, list[Period]]
    test_file: Path | None = None  # where its test windows go: None for the first archive's

    def indices(self, split: str) -> list[int]:
        return [i for period in self.splits[split] for i in period.windows]


def _more_archives(
    params: Params, info: dict, more_windows: Path | None, more_test: Path | None
) -> list[_SplitArchive]:
    """`data.radar.archives` as fetch wrote them (`info["archives"]`), each split as the first
    one is, or, with `train: false`, all test."""
    radar, n_frames = params.data.radar, params.data.n_frames
    fetched = info.get("archives", [])
    if len(fetched) != len(radar.archives):
        raise NextframeError(
            f"params.yaml: data.radar.archives lists {len(radar.archives)} archives, fetch "
            f"read {len(fetched)}: run fetch again (dvc repro)"
        )
    archives = []
    labels = {radar.network}
    for index, (archive, each) in enumerate(zip(radar.archives, fetched, strict=True)):
        periods = split_periods(each, radar, n_frames, each["window_stride"])
        if archive.train:
            splits = periods_per_split(periods, radar, f"data.radar.archives[{index}]")
        else:
            splits = {"train": [], "val": [], "test": periods}
        label = archive.network if archive.network not in labels else f"{archive.network}[{index}]"
        labels.add(label)
        windows = open_archive_windows(more_windows, each, n_frames)
        archives.append(_SplitArchive(label, windows, periods, splits, more_test / each["file"]))
    return archives


def write_radar_splits(
    params: Params,
    windows: WindowFile,
    info: dict,
    outputs: dict[str, Path],
    digits_out: Path,
    manifest_out: Path,
    more_windows: Path | None = None,
    more_test: Path | None = None,
) -> str:
    """Write test windows (whole domain) and train / val crops, the (empty) digits and the
    manifest; a summary line. With `data.radar.archives`, their windows (in the frame stores
    of `more_windows`, fetch's folder) are
    split alike: crops of every archive trained on, in order, go to the same train and val
    files; each archive's test windows to its own file in `more_test`."""
    radar, scale = params.data.radar, RainScale.of(params.data.radar)
    periods = split_periods(info, radar, params.data.n_frames, info["window_stride"])
    first = _SplitArchive(radar.network, windows, periods, periods_per_split(periods, radar))
    archives = [first, *_more_archives(params, info, more_windows, more_test)]
    events = first.splits
    indices = {split: first.indices(split) for split in SPLITS}
    val_from_train = not events["val"]
    streams = {
        "train": np.random.default_rng([params.seed, 0]),
        "val": np.random.default_rng([params.seed, _VAL_STREAM]),
    }
    manifest: dict = {"source": "radar", "splits": {}}
    sizes = {"train": params.data.stored_size, "val": radar.crop}
    # Validation drawn from the training events only tracks the fit: a quarter as many.
    val_count = max(1, radar.crops_per_window // VAL_SHARE) if val_from_train else None
    lagrangian = radar.formulation == "lagrangian"
    n_context = params.data.n_context  # read for every formulation of a radar source
    still = 0
    with contextlib.ExitStack() as stack:
        appenders = {
            split: stack.enter_context(
                npy_appender(outputs[split], (params.data.n_frames, sizes[split], sizes[split], 1))
            )
            for split in ("train", "val")
        }
        for archive in archives:
            val_split = "train" if val_from_train else "val"
            draws = {
                "train": _CropDraw(
                    archive.indices("train"),
                    radar.crops_per_window,
                    streams["train"],
                    sizes["train"],
                    appenders["train"],
                ),
                "val": _CropDraw(
                    archive.indices(val_split),
                    val_count or radar.crops_per_window,
                    streams["val"],
                    sizes["val"],
                    appenders["val"],
                ),
            }
            still += _draw_all_crops(
                archive.windows, draws, scale, n_context if lagrangian else None
            )
    for split in SPLITS:
        if split == "test":
            shape = (len(indices["test"]), *windows.shape[1:])
            digest = write_npy_in_chunks(
                outputs["test"], shape, windows.chunks(np.array(indices["test"]))
            )
        else:
            appender, size = appenders[split], sizes[split]
            digest, shape = appender.digest, (appender.n_rows, params.data.n_frames, size, size, 1)
            if appender.n_rows == 0:
                key = "data.radar.region" if size != radar.crop else "data.radar.crop"
                raise NextframeError(
                    f"no {split} crop of {size} px lies at least half inside the radar "
                    f"domain (lower {key})"
                )
        manifest["splits"][split] = {
            "count": shape[0],
            "shape": list(shape),
            "dtype": "uint8",
            "sha256": digest,
        }
    more = []
    for archive, each in zip(archives[1:], info.get("archives", []), strict=True):
        test = archive.indices("test")
        shape = (len(test), *archive.windows.shape[1:])
        archive.test_file.parent.mkdir(parents=True, exist_ok=True)
        digest = write_npy_in_chunks(
            archive.test_file, shape, archive.windows.chunks(np.array(test))
        )
        more.append(
            {
                "label": archive.label,
                "file": each["file"],
                "grid": each["grid"],
                "count": shape[0],
                "sha256": digest,
                "events": {split: [p.label for p in archive.splits[split]] for split in SPLITS},
                "trained": bool(archive.splits["train"]),
            }
        )
    if more_test is not None:
        more_test.mkdir(parents=True, exist_ok=True)
        # What evaluate scores besides the first archive, kept out of the manifest: an archive
        # only scored changes nothing training reads, so adding one trains no model again.
        write_json(more_test / INDEX, more)
    save_npy(digits_out, NO_DIGITS)
    manifest["train_digits"] = {"count": 0, "sha256": hashlib.sha256(b"").hexdigest()}
    event_starts = {split: [period.label for period in events[split]] for split in SPLITS}
    manifest["dataset"] = {
        "name": f"radar_{radar.network}",
        "source": info["layout"]["folder"],
        "digest": manifest["splits"]["train"]["sha256"],
        "events": event_starts,
        "windows": {split: manifest["splits"][split]["count"] for split in SPLITS},
    }
    manifest["radar"] = {
        "network": radar.network,
        "grid": info["grid"],
        "timestep_minutes": info["timestep_minutes"],
        "events": event_starts,
    }
    trained_too = [each for each in more if each["trained"]]
    if trained_too:
        manifest["dataset"]["name"] += "".join(f"+{each['label']}" for each in trained_too)
        manifest["dataset"]["archives"] = {each["label"]: each["events"] for each in trained_too}
    write_json(manifest_out, manifest)
    unit = "events" if radar.block_hours is None else "blocks"
    val_note = (
        f"val crops from the training {unit}"
        if val_from_train
        else (f"val {len(events['val'])} {unit}")
    )
    blocks_note = ""
    if radar.block_hours is not None:
        inside = sum(len(period.windows) for period in periods)
        blocks_note = (
            f"; {sum(e['n_windows'] for e in info['events']) - inside} windows across "
            f"{radar.block_hours:g} h block ends left out"
        )
    frame_note = ""
    if lagrangian:
        frame_note = ", in the frame of the rain's motion"
        if still:
            frame_note += f" ({still} windows without motion to find, left still)"
    what = "crops"
    if params.data.stored_size != radar.crop:
        what = f"regions of {params.data.stored_size} px (a crop of each at a new place each epoch)"
    more_note = "".join(
        f"; {each['label']}: train {len(archive.splits['train'])} {unit}, test "
        f"{each['count']} windows of {len(archive.splits['test'])} {unit}"
        for archive, each in zip(archives[1:], more, strict=True)
    )
    return (
        f"train {manifest['splits']['train']['count']} {what} of {len(events['train'])} {unit}"
        f"{frame_note}, "
        f"{val_note} ({manifest['splits']['val']['count']}), test "
        f"{manifest['splits']['test']['count']} whole-domain windows of "
        f"{len(events['test'])} {unit} ({', '.join(event_starts['test'])}){blocks_note}"
        f"{more_note}"
    )
