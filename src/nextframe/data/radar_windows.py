"""Radar archives as the pipeline's windows: whole composites per event, split by event in
time, and rainy training crops.

Fetch (`nextframe.data.sources`) reads the archive (`nextframe.data.radar`), splits it into
events where frames are not one time step apart (an all-NaN frame is skipped, and so splits
its event too), and writes
every event's windows of `data.n_frames` frames, one starting every `data.window_stride`,
as rain codes (`nextframe.rain`) over the whole domain. No window crosses an event's end.

Preprocess assigns whole events to splits, in time order: the last `test_events` are test,
the `val_events` before them validation, the rest training. Test keeps whole-domain windows
(evaluation and render read the whole composite, so rain can enter from outside any crop);
training reads `crop` x `crop` crops, `crops_per_window` of each training window (see
`draw_crops`); validation crops come from the validation events, or with `val_events: 0`
from the training events (a separate draw of a quarter as many: it tracks the fit, it is not
a held-out score).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from nextframe.data.moving_mnist import SPLITS
from nextframe.data.windows import WindowFile
from nextframe.errors import NextframeError
from nextframe.io import npy_appender, save_npy, write_json, write_npy_in_chunks
from nextframe.params import Params, RadarParams
from nextframe.rain import NO_DATA, RainScale

# Candidate crops start every crop // CANDIDATE_STEPS pixels; a crop needs this share of its
# pixels inside the radar's domain.
CANDIDATE_STEPS = 4
MIN_INSIDE = 0.5
# A candidate's chance: this floor plus the share of its pixels raining >= RAINY_MMH.
DRY_WEIGHT = 0.01
RAINY_MMH = 1.0
VAL_SHARE = 4  # validation crops from training events: crops_per_window // 4 a window
_VAL_STREAM = 0x76616C  # the val draw from training events never repeats the training draw


def events_per_split(info: dict, radar: RadarParams) -> dict[str, list[int]]:
    """Which events (indices, in time order) each split holds: test last, val before it."""
    n_events = len(info["events"])
    held_out = radar.test_events + radar.val_events
    if held_out >= n_events:
        raise NextframeError(
            f"params.yaml: data.radar.test_events + data.radar.val_events is {held_out} but "
            f"the archive holds {n_events} events (training needs at least one)"
        )
    order = list(range(n_events))
    n_train = n_events - held_out
    val = order[n_train : n_train + radar.val_events]
    return {"train": order[:n_train], "val": val, "test": order[n_train:]}


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


def _crops(
    windows: WindowFile, indices: list[int], crop: int, count: int, rng, scale: RainScale
) -> Iterator[np.ndarray]:
    for index in indices:
        window = windows[index]
        for top, left in draw_crops(window[..., 0], crop, count, rng, scale):
            yield window[None, :, top : top + crop, left : left + crop]


def _window_indices(info: dict, events: list[int]) -> list[int]:
    out = []
    for e in events:
        event = info["events"][e]
        out.extend(range(event["first_window"], event["first_window"] + event["n_windows"]))
    return out


def write_radar_splits(
    params: Params,
    windows: WindowFile,
    info: dict,
    outputs: dict[str, Path],
    digits_out: Path,
    manifest_out: Path,
) -> str:
    """Write test windows (whole domain) and train / val crops, the (empty) digits and the
    manifest; a summary line."""
    radar, scale = params.data.radar, RainScale.of(params.data.radar)
    events = events_per_split(info, radar)
    indices = {split: _window_indices(info, events[split]) for split in SPLITS}
    val_from_train = not events["val"]
    streams = {
        "train": np.random.default_rng([params.seed, 0]),
        "val": np.random.default_rng([params.seed, _VAL_STREAM]),
    }
    manifest: dict = {"source": "radar", "splits": {}}
    crop_shape = (params.data.n_frames, radar.crop, radar.crop, 1)
    for split in SPLITS:
        if split == "test":
            shape = (len(indices["test"]), *windows.shape[1:])
            digest = write_npy_in_chunks(
                outputs["test"], shape, windows.chunks(np.array(indices["test"]))
            )
        else:
            from_train = split == "val" and val_from_train
            source_windows = indices["train"] if from_train else indices[split]
            # Validation drawn from the training events only tracks the fit: a quarter as many.
            count = radar.crops_per_window
            if from_train:
                count = max(1, count // VAL_SHARE)
            crops = _crops(windows, source_windows, radar.crop, count, streams[split], scale)
            with npy_appender(outputs[split], crop_shape) as appender:
                for chunk in crops:
                    appender.append(chunk)
            digest, shape = appender.digest, (appender.n_rows, *crop_shape)
            if appender.n_rows == 0:
                raise NextframeError(
                    f"no {split} crop of {radar.crop} px lies at least half inside the radar "
                    "domain (lower data.radar.crop)"
                )
        manifest["splits"][split] = {
            "count": shape[0],
            "shape": list(shape),
            "dtype": "uint8",
            "sha256": digest,
        }
    save_npy(digits_out, np.zeros((0, 28, 28), dtype=np.uint8))
    manifest["train_digits"] = {"count": 0, "sha256": hashlib.sha256(b"").hexdigest()}
    event_starts = {split: [info["events"][e]["start"] for e in events[split]] for split in SPLITS}
    manifest["dataset"] = {
        "name": f"radar_{radar.network}",
        "source": info["layout"]["folder"],
        "digest": manifest["splits"]["train"]["sha256"],
        "events": event_starts,
        "windows": {split: manifest["splits"][split]["count"] for split in SPLITS},
    }
    manifest["radar"] = {
        "grid": info["grid"],
        "timestep_minutes": info["timestep_minutes"],
        "events": event_starts,
    }
    write_json(manifest_out, manifest)
    val_note = (
        "val crops from the training events"
        if val_from_train
        else (f"val {len(events['val'])} events")
    )
    return (
        f"train {manifest['splits']['train']['count']} crops of {len(events['train'])} events, "
        f"{val_note} ({manifest['splits']['val']['count']}), test "
        f"{manifest['splits']['test']['count']} whole-domain windows of "
        f"{len(events['test'])} events ({', '.join(event_starts['test'])})"
    )
