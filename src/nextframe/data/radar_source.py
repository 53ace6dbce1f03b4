"""`radar`: a weather-radar archive read with pysteps, split by event in time
(`nextframe.data.radar_windows`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nextframe.data.radar_windows import (
    write_event_windows,
    write_more_archives,
    write_radar_splits,
)
from nextframe.data.source import NO_DIGITS, FetchPaths, Source, SplitPaths
from nextframe.data.windows import open_radar_windows
from nextframe.io import save_npy
from nextframe.params import Params


class RadarSource(Source):
    """Whole-domain windows of rain codes per event, any frame size; no digits. Preprocess keeps
    the test events whole and crops training and validation windows."""

    def fetch(
        self, params: Params, folder: Path, out: FetchPaths, clear_outputs: Callable[[], None]
    ) -> tuple[dict, str]:
        clear_outputs()
        info, summary = write_event_windows(params, out.radar_root, out.windows)
        if params.data.radar.archives:
            infos, summaries = write_more_archives(params, out.radar_root, out.archives, info)
            info["archives"] = infos
            summary = "; ".join([summary, *summaries])
        save_npy(out.digits, NO_DIGITS)
        return info, summary

    def split(
        self, params: Params, info: dict, paths: SplitPaths, clear_outputs: Callable[[], None]
    ) -> str:
        windows = open_radar_windows(paths.windows, params.data.n_frames)
        clear_outputs()
        return write_radar_splits(
            params,
            windows,
            info,
            paths.splits,
            paths.train_digits,
            paths.manifest,
            paths.archives,
            paths.test_archives,
        )
