"""Windows on disk: what every data source hands on, one `.npy` of (N, T, H, W, C) uint8.

Read by positioned reads, never memory-mapped: mapped pages stay resident (whole page-cache
folios around each read), so a training epoch over a mapped file would hold all of it. A
`WindowFile` holds one open descriptor and reads exactly the frames asked for.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from nextframe.errors import NextframeError
from nextframe.io import load_npy

# The file that lists what a folder of more archives' windows holds (`data.radar.archives`).
INDEX = "index.json"
# Windows are copied about this many bytes at a time: memory stays flat however big the file.
CHUNK_BYTES = 4 << 20


class WindowFile:
    """A (N, T, H, W, C) uint8 `.npy`, indexed like an array for what training and evaluation
    take: `w[i]` one window, `w[a:b]` consecutive windows, `w[i, s:e]` frames s..e-1 of one."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        header = load_npy(self.path)  # memory-mapped for the layout only: no page is touched
        expected = "windows (N, T, H, W, C) uint8 in C order"
        if header.dtype != np.uint8 or header.ndim != 5 or not header.flags.c_contiguous:
            raise NextframeError(
                f"{self.path}: expected {expected}, got {header.dtype} of shape {header.shape}"
            )
        self.shape: tuple[int, ...] = header.shape
        self._offset = header.offset
        self._frame_bytes = int(np.prod(self.shape[2:]))
        self._fd = os.open(self.path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.shape[0]

    def __del__(self, _close=os.close) -> None:  # `os` may be gone at interpreter exit
        fd = getattr(self, "_fd", None)
        if fd is not None:
            _close(fd)

    def _read(self, first_frame: int, n_frames: int) -> np.ndarray:
        out = np.empty((n_frames, *self.shape[2:]), dtype=np.uint8)
        start = self._offset + first_frame * self._frame_bytes
        if os.preadv(self._fd, [memoryview(out).cast("B")], start) != out.nbytes:
            raise NextframeError(f"{self.path}: file shrank while it was read")
        return out

    def __getitem__(self, key) -> np.ndarray:
        n, t = self.shape[:2]
        if isinstance(key, tuple):
            row, frames = key
            first, stop, step = frames.indices(t)
            if step != 1 or not 0 <= row < n:
                raise IndexError(key)
            return self._read(self._first_frame(row) + first, max(stop - first, 0))
        if isinstance(key, slice):
            first, stop, step = key.indices(n)
            if step != 1:
                raise IndexError(key)
            count = max(stop - first, 0)
            return self._read(first * t, count * t).reshape(count, *self.shape[1:])
        if not 0 <= key < n:
            raise IndexError(key)
        return self._read(self._first_frame(int(key)), t)

    def _first_frame(self, row: int) -> int:
        """Where window `row` starts, counted in frames from the file's first."""
        return row * self.shape[1]

    def chunks(
        self, indices: np.ndarray, n_frames: int | None = None, per_chunk: int | None = None
    ) -> Iterator[np.ndarray]:
        """Windows `indices` (their first `n_frames` frames), a chunk of them at a time (of
        about `CHUNK_BYTES` unless `per_chunk` says how many)."""
        n_frames = self.shape[1] if n_frames is None else n_frames
        if per_chunk is None:
            per_chunk = max(1, CHUNK_BYTES // (n_frames * self._frame_bytes))
        for start in range(0, len(indices), per_chunk):
            yield np.stack([self[int(i), :n_frames] for i in indices[start : start + per_chunk]])


class FrameWindows(WindowFile):
    """Windows of a frame store, a (N, H, W, C) uint8 `.npy` that holds each frame once:
    window i is frames `starts[i]` .. `starts[i] + n_frames - 1`. Indexed as a `WindowFile`
    is (`w[i]`, `w[i, s:e]`, `chunks`), so what reads windows reads these alike; pickled as its
    path, starts and length, for worker processes."""

    def __init__(self, path: str | os.PathLike[str], starts, n_frames: int):
        self.path = Path(path)
        header = load_npy(self.path)
        if header.dtype != np.uint8 or header.ndim != 4 or not header.flags.c_contiguous:
            raise NextframeError(
                f"{self.path}: expected frames (N, H, W, C) uint8 in C order, got "
                f"{header.dtype} of shape {header.shape}"
            )
        self.starts = np.asarray(starts, dtype=np.int64).reshape(-1)
        self.n_frames = int(n_frames)
        end = int(self.starts.max()) + self.n_frames if len(self.starts) else 0
        if len(self.starts) and (self.starts.min() < 0 or end > header.shape[0]):
            raise NextframeError(
                f"{self.path}: holds {header.shape[0]} frames, its index reads up to frame "
                f"{end}: truncated, or not the frames the index describes (run fetch again)"
            )
        self.shape = (len(self.starts), self.n_frames, *header.shape[1:])
        self._offset = header.offset
        self._frame_bytes = int(np.prod(header.shape[1:]))
        self._fd = os.open(self.path, os.O_RDONLY)

    def _first_frame(self, row: int) -> int:
        return int(self.starts[row])

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, slice):  # windows overlap in the store: one by one
            first, stop, step = key.indices(len(self))
            rows = [self[i] for i in range(first, stop, step)]
            return np.stack(rows) if rows else np.empty((0, *self.shape[1:]), np.uint8)
        return super().__getitem__(key)

    def __reduce__(self):
        return (FrameWindows, (self.path, self.starts.tolist(), self.n_frames))


def open_windows(
    path: str | os.PathLike[str], n_frames: int, frame_size: int, channels: int
) -> WindowFile:
    """A `WindowFile` of at least one window of >= `n_frames` frames of `frame_size` squared
    by `channels`; anything else is refused with one line."""
    windows = WindowFile(path)
    n, t, h, w, c = windows.shape
    expected = f"(N, {n_frames}, {frame_size}, {frame_size}, {channels}) uint8"
    if n == 0 or t < n_frames or (h, w, c) != (frame_size, frame_size, channels):
        raise NextframeError(f"{path}: expected {expected}, got shape {windows.shape}")
    return windows


def open_radar_windows(path: str | os.PathLike[str], n_frames: int) -> WindowFile:
    """Windows of rain codes (`nextframe.domains.rain.scale`) of any frame size, at least
    `n_frames` frames, one value a pixel."""
    windows = WindowFile(path)
    n, t, _, _, c = windows.shape
    if n == 0 or t < n_frames or c != 1:
        raise NextframeError(
            f"{path}: expected radar windows (N, {n_frames}, H, W, 1) uint8, got shape "
            f"{windows.shape}"
        )
    return windows
