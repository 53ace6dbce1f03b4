"""`data.source: folder`: a folder of your own clips, cut into windows on disk.

Every clip file under the folder is read (`nextframe.clips`: videos, GIFs, arrays, folders of
numbered images), its frames brought to the model's (`FrameFormat`), every `frame_stride`-th
kept, and cut into windows of `n_frames` starting every `window_stride` frames. Windows go to
one uint8 `.npy` as they are made: memory holds one window and one clip's digest at a time,
however many clips there are, and 8 bytes of hash per kept frame. A clip shorter than one
window is skipped and counted.

The split is by clip, never by window. If the folder has `train/`, `val/` and `test/`
sub-folders, they are the split; otherwise preprocess gives each split its quota of the clips,
ranked by their content and `seed` (`nextframe.data.splits.split_of_clips`). Clips that share a
kept frame (a take cut into overlapping files, an excerpt, the same frames saved twice) go as
one there, so no frame is in two splits: each kept frame is hashed, and the clips joined
through shared frames get one `group` key. The hash is exact: it finds bit-identical frames
(arrays, image folders, lossless video), not a lossy video's re-encoded frames. Frames of one
value (a black frame of a fade) join nothing: they would chain unrelated clips into one.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nextframe.clips import CLIP_SUFFIXES, Clip, ReadNotes, clips_of, numbered_images
from nextframe.data.splits import SPLITS
from nextframe.errors import NextframeError
from nextframe.frames import FrameFormat, to_uint8
from nextframe.io import npy_appender


@dataclass(frozen=True)
class Windowing:
    """How clips become windows: `n_frames` frames each, starting every `window_stride` kept
    frames, keeping every `frame_stride`-th frame of the clip."""

    n_frames: int
    window_stride: int
    frame_stride: int


@dataclass
class FolderClips:
    """The clips found under a folder, each with its given split (None: drawn later), the
    files that were no clip and the `.npz` members that hold none."""

    clips: list[tuple[Clip, str | None]]
    skipped_files: list[str] = field(default_factory=list)
    passed_over: list[str] = field(default_factory=list)
    npz_members: list[str] | None = None


def find_clips(folder: Path, npz_members: list[str] | None = None) -> FolderClips:
    """Every clip under `folder`, in name order, with its split if sub-folders give one; of an
    `.npz`, the members `npz_members` names (None: each that can be a clip)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NextframeError(f"{folder}: no such folder (data.folder)")
    split_dirs = [folder / s for s in SPLITS if (folder / s).is_dir()]
    found = FolderClips([], npz_members=npz_members)
    if split_dirs:
        missing = [s for s in SPLITS if not (folder / s).is_dir()]
        if missing:
            raise NextframeError(
                f"{folder}: has {', '.join(d.name for d in split_dirs)}/ but no "
                f"{', '.join(missing)}/: give all three split folders, or none"
            )
        for split_dir in split_dirs:
            for clip in _walk(split_dir, folder, found):
                found.clips.append((clip, split_dir.name))
    else:
        found.clips = [(clip, None) for clip in _walk(folder, folder, found)]
    if not found.clips:
        raise NextframeError(
            f"{folder}: holds no clip (read are {', '.join(CLIP_SUFFIXES)} files and folders "
            "of numbered PNG/JPEG/TIFF frames)"
        )
    return found


def _walk(directory: Path, root: Path, found: FolderClips) -> Iterator[Clip]:
    """Clips under `directory`, depth first in name order; a folder whose files are images is
    one clip. Hidden files are passed over; other files are noted as skipped."""
    entries = sorted(p for p in directory.iterdir() if not p.name.startswith("."))
    for path in entries:
        name = str(path.relative_to(root))
        if path.is_dir():
            if numbered_images(path):
                yield from clips_of(path, name)
            else:  # no images: a folder of clips, one level down
                yield from _walk(path, root, found)
        elif path.suffix.lower() in CLIP_SUFFIXES:
            yield from clips_of(
                path, name, npz_members=found.npz_members, passed_over=found.passed_over
            )
        else:
            found.skipped_files.append(name)


def windows_of(kept: Iterator[np.ndarray], windowing: Windowing) -> Iterator[np.ndarray]:
    """Windows (n_frames, size, size, C) uint8 of a clip's kept frames, each made as soon as
    its last frame is decoded: only `n_frames` frames are held."""
    recent: deque[np.ndarray] = deque(maxlen=windowing.n_frames)
    for t, frame in enumerate(kept):
        recent.append(frame)
        start = t + 1 - windowing.n_frames
        if start >= 0 and start % windowing.window_stride == 0:
            yield np.stack(recent)


class _KeptFrames:
    """A clip's kept frames (every `frame_stride`-th, as uint8), counted and hashed on their
    way to its windows; frames of one value are not hashed."""

    def __init__(self, frames: Iterator[np.ndarray], frame_stride: int):
        self._frames = islice(frames, 0, None, frame_stride)
        self.count = 0
        self._hashes = bytearray()

    def __iter__(self) -> _KeptFrames:
        return self

    def __next__(self) -> np.ndarray:
        frame = to_uint8(next(self._frames))
        self.count += 1
        if frame.min() != frame.max():
            frame = np.ascontiguousarray(frame)
            self._hashes += hashlib.blake2b(frame.data, digest_size=8).digest()
        return frame

    def hashes(self) -> np.ndarray:
        """The distinct hashes of the frames read, uint64."""
        return np.unique(np.frombuffer(bytes(self._hashes), np.uint64))


def frame_groups(contents: list[str], frame_hashes: list[np.ndarray]) -> list[str]:
    """Each clip's group key, by the clips' content sha256 and their frames' hashes: clips
    sharing a frame or their content, directly or through others, are one group (union-find),
    keyed by the least sha256 in it; a clip sharing nothing keeps its own."""
    parent = list(range(len(contents)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(i: int, j: int) -> None:
        i, j = root(i), root(j)
        parent[max(i, j)] = min(i, j)

    first_of_content: dict[str, int] = {}
    for i, sha in enumerate(contents):
        join(i, first_of_content.setdefault(sha, i))
    owners = np.repeat(np.arange(len(frame_hashes)), [len(h) for h in frame_hashes])
    hashes = np.concatenate([np.zeros(0, np.uint64), *frame_hashes])
    order = np.argsort(hashes, kind="stable")
    hashes, owners = hashes[order], owners[order]
    shared = np.flatnonzero((hashes[1:] == hashes[:-1]) & (owners[1:] != owners[:-1]))
    for k in shared.tolist():
        join(owners[k], owners[k + 1])
    key_of_root: dict[int, str] = {}
    for i, sha in enumerate(contents):
        key_of_root[root(i)] = min(key_of_root.get(root(i), sha), sha)
    return [key_of_root[root(i)] for i in range(len(contents))]


@dataclass
class IngestReport:
    """What ingesting a folder made, for info.json and the summary line."""

    clips: list[dict] = field(default_factory=list)  # name, sha256, group, frames, windows, split
    n_windows: int = 0
    too_short: list[str] = field(default_factory=list)
    notes: ReadNotes = field(default_factory=ReadNotes)
    skipped_files: list[str] = field(default_factory=list)
    fmt: FrameFormat | None = None  # the frames read, for the notes

    def summary(self) -> str:
        used = len(self.clips)
        parts = [f"{used} clips -> {self.n_windows} windows"]
        if self.too_short:
            parts.append(f"{len(self.too_short)} clips shorter than one window skipped")
        if self.skipped_files:
            parts.append(
                f"{len(self.skipped_files)} files that are no clip passed over: "
                f"{_some(self.skipped_files)}"
            )
        if self.notes.passed_over:
            parts.append(
                f"{len(self.notes.passed_over)} .npz members that are no clip passed over: "
                f"{_some(self.notes.passed_over)}"
            )
        notes = self.sharing_notes() + self.frame_notes()
        return "; ".join(parts + [f"note: {note}" for note in notes])

    def sharing_notes(self) -> list[str]:
        """How many clips share frames with another, in how many groups."""
        sizes: dict[str, int] = {}
        for clip in self.clips:
            sizes[clip["group"]] = sizes.get(clip["group"], 0) + 1
        shared = [n for n in sizes.values() if n > 1]
        if not shared:
            return []
        drawn = any(clip["split"] is None for clip in self.clips)
        kept = ", each kept to one split" if drawn else ""
        return [f"{sum(shared)} clips share frames with another ({len(shared)} groups{kept})"]

    def frame_notes(self) -> list[str]:
        """What reading did to the frames, clips counted: every change is said."""
        notes, fmt = self.notes, self.fmt
        said = []
        if notes.rotated_clips:
            said.append(f"{len(notes.rotated_clips)} clips turned upright (their video's rotation)")
        if notes.resized_clips and fmt is not None:
            how = {"crop": "centre-cropped", "pad": "padded", "stretch": "stretched"}[fmt.aspect]
            unsquare = len(notes.unsquare_clips)
            shape = f" ({unsquare} not square: {how})" if unsquare else ""
            said.append(f"{len(notes.resized_clips)} clips resized to {fmt.size}x{fmt.size}{shape}")
        if notes.converted_clips:
            n = len(notes.converted_clips)
            said.append(f"{n} clips converted to data.channels (grey <-> RGB)")
        if notes.alpha_clips:
            said.append(f"{len(notes.alpha_clips)} clips' alpha channel dropped")
        if notes.deep_clips:
            said.append(
                f"{len(notes.deep_clips)} clips of 16-bit values read as 0-65535 "
                "(data.value_range sets another)"
            )
        if notes.clipped_values:
            said.append(f"{notes.clipped_values} values outside data.value_range clipped to it")
        return said


def _some(names: list[str], shown: int = 3) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def ingest(
    folder: Path,
    out: Path,
    fmt: FrameFormat,
    windowing: Windowing,
    progress: bool = True,
    found: FolderClips | None = None,
) -> IngestReport:
    """Windows (N, n_frames, size, size, C) uint8 of every clip under `folder` into `out`;
    `found`: its clips, if `find_clips` has found them already."""
    found = found if found is not None else find_clips(folder)
    report = IngestReport(skipped_files=found.skipped_files, fmt=fmt)
    report.notes.passed_over.extend(found.passed_over)
    row_shape = (windowing.n_frames, fmt.size, fmt.size, fmt.channels)
    with npy_appender(out, row_shape) as appender:
        frame_hashes = []
        bar = tqdm(found.clips, desc="reading clips", unit="clip", disable=not progress)
        for clip, split in bar:
            first = appender.n_rows
            kept = _KeptFrames(clip.frames(fmt, report.notes), windowing.frame_stride)
            for window in windows_of(kept, windowing):
                appender.append(window[None])
            n_windows = appender.n_rows - first
            if n_windows == 0:
                report.too_short.append(clip.name)
                continue
            frame_hashes.append(kept.hashes())
            report.clips.append(
                {
                    "name": clip.name,
                    "sha256": clip.digest(),
                    "frames": kept.count,
                    "first_window": first,
                    "windows": n_windows,
                    "split": split,
                }
            )
        report.n_windows = appender.n_rows
        if not report.clips:
            raise NextframeError(
                f"{folder}: every one of its {len(found.clips)} clips is shorter than one window "
                f"of data.n_frames ({windowing.n_frames}) kept frames (data.frame_stride "
                f"{windowing.frame_stride})"
            )
    contents = [clip["sha256"] for clip in report.clips]
    for clip, group in zip(report.clips, frame_groups(contents, frame_hashes), strict=True):
        clip["group"] = group
    return report
