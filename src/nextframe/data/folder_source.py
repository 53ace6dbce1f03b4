"""`folder`: your own clips (`nextframe.data.folder`), split by clip."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nextframe.data.folder import FolderClips, Windowing, find_clips, ingest
from nextframe.data.manifest import split_fetched
from nextframe.data.source import NO_DIGITS, FetchPaths, Source, SplitPaths
from nextframe.frames import FrameFormat
from nextframe.io import save_npy
from nextframe.params import Params


class FolderSource(Source):
    """Windows of every clip under `data.folder`, which is checked to hold clips before the
    last outputs go; no digits."""

    def fetch(
        self, params: Params, folder: Path, out: FetchPaths, clear_outputs: Callable[[], None]
    ) -> tuple[dict, str]:
        found = find_clips(folder, params.data.npz_members)
        clear_outputs()
        return fetch_found_clips(params, folder, found, out)

    def split(
        self, params: Params, info: dict, paths: SplitPaths, clear_outputs: Callable[[], None]
    ) -> str:
        return split_fetched(params, info, paths, clear_outputs)


def fetch_found_clips(
    params: Params, folder: Path, found: FolderClips, out: FetchPaths
) -> tuple[dict, str]:
    """Write the windows of the clips `found` under `folder`, reading each once, and no digits;
    (info for preprocess, a summary line)."""
    data = params.data
    windowing = Windowing(data.n_frames, data.window_stride, data.frame_stride)
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
