"""`radar`: a weather-radar archive read with pysteps, split by event in time
(`nextframe.data.radar_windows`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from nextframe.data.radar_store import CACHE_FOLDER, open_archive_windows, write_all_archives
from nextframe.data.radar_windows import write_radar_splits
from nextframe.data.source import NO_DIGITS, FetchPaths, Source, SplitPaths
from nextframe.io import save_npy
from nextframe.params import Params


class RadarSource(Source):
    """Each archive's frames once, in frame stores (`out.archives`), its windows an index into
    them; no digits. Preprocess keeps the test events' windows whole and crops training and
    validation windows. Decoded files are cached under the downloads folder."""

    def fetch(
        self, params: Params, folder: Path, out: FetchPaths, clear_outputs: Callable[[], None]
    ) -> tuple[dict, str]:
        clear_outputs()
        cache = out.downloads / CACHE_FOLDER
        info, summary = write_all_archives(params, out.radar_root, out.archives, cache)
        # The frames are in `out.archives`, once each: no window is written out whole.
        height, width = info["grid"]["shape"]
        save_npy(out.windows, np.zeros((0, params.data.n_frames, height, width, 1), np.uint8))
        save_npy(out.digits, NO_DIGITS)
        return info, summary

    def split(
        self, params: Params, info: dict, paths: SplitPaths, clear_outputs: Callable[[], None]
    ) -> str:
        windows = open_archive_windows(paths.archives, info, params.data.n_frames)
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
