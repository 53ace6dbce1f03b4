"""What every data source does for the pipeline, whatever it reads: one interface, so the fetch
and preprocess stages call a `Source` found by name (`nextframe.data.sources.get_source`) and
name no source themselves.

Fetch writes the same files for every source: windows (N, T, H, W, C) uint8, the digits fresh
training sequences are drawn from (none for a source without them) and an info mapping for
preprocess (how to split, what was read). Preprocess writes train, val and test windows, the
training digits and a manifest of digests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nextframe.data.moving_mnist import DIGIT_SIZE
from nextframe.data.windows import INDEX
from nextframe.io import write_json
from nextframe.params import Params

# The digits of a source without them: nothing to draw fresh training sequences from.
NO_DIGITS = np.zeros((0, DIGIT_SIZE, DIGIT_SIZE), dtype=np.uint8)


def index_folder(folder: Path) -> None:
    """Give a folder of more archives' windows an index (`INDEX`: a list, empty where the
    source wrote none), creating the folder if no source did: the output DVC tracks is never
    empty."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / INDEX).exists():
        write_json(folder / INDEX, [])


@dataclass(frozen=True)
class FetchPaths:
    """Where the fetch stage writes, and where downloads are kept between runs."""

    windows: Path
    digits: Path
    downloads: Path
    radar_root: Path | None = None  # `data.source: radar`: the archive's root
    archives: Path | None = None  # a folder: the windows of `data.radar.archives`, one file each


@dataclass(frozen=True)
class SplitPaths:
    """What the preprocess stage reads (the fetched windows and digits) and writes."""

    windows: Path
    digits: Path
    splits: dict[str, Path]  # train, val and test windows
    train_digits: Path
    manifest: Path
    archives: Path | None = None  # fetch's folder of more archives' windows
    test_archives: Path | None = None  # a folder: each more archive's test windows


class Source(ABC):
    """One `data.source`: how its windows are fetched and how they are split.

    Both steps call `clear_outputs` before they write anything and after whatever inputs they
    check first, so a stage that fails leaves no stale output, and a missing input that is
    checked first leaves the last outputs in place."""

    @abstractmethod
    def fetch(
        self, params: Params, folder: Path, out: FetchPaths, clear_outputs: Callable[[], None]
    ) -> tuple[dict, str]:
        """Write `out.windows` and `out.digits` (`folder`: `data.folder`); (info for
        preprocess, a summary line)."""

    @abstractmethod
    def split(
        self, params: Params, info: dict, paths: SplitPaths, clear_outputs: Callable[[], None]
    ) -> str:
        """Write the splits, the training digits and the manifest from the fetched windows
        and digits that fetch's `info` describes; a summary line."""
