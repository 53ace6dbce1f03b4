"""Data sources are found by name (`nextframe.data.sources`): a new one is one `Source` and one
line in the table, and fetch then preprocess run it as they run the others."""

from __future__ import annotations

import numpy as np
import pytest

from nextframe.data.manifest import split_fetched
from nextframe.data.source import NO_DIGITS, FetchPaths, Source, SplitPaths
from nextframe.data.sources import SOURCES, get_source
from nextframe.data.splits import SPLITS
from nextframe.errors import NextframeError
from nextframe.io import load_json, save_npy
from nextframe.params import load_params

from ..helpers import tiny_params, write_params


class Brightening(Source):
    """A tiny source: every window brightens frame by frame from its own level."""

    def fetch(self, params, folder, out, clear_outputs):
        data = params.data
        counts = {"train": data.n_train, "val": data.n_val, "test": data.n_test}
        start = np.arange(sum(counts.values()))[:, None] % 128
        levels = start + 8 * np.arange(data.n_frames)[None, :]
        shape = (*levels.shape, data.frame_size, data.frame_size, 1)
        clear_outputs()
        save_npy(
            out.windows, np.broadcast_to(levels[..., None, None, None], shape).astype(np.uint8)
        )
        save_npy(out.digits, NO_DIGITS)
        return {"source": "brightening", "split_sizes": counts}, f"{len(start)} windows"

    def split(self, params, info, paths, clear_outputs):
        return split_fetched(params, info, paths, clear_outputs)


@pytest.fixture
def brightening(monkeypatch):
    monkeypatch.setitem(SOURCES, "brightening", Brightening())  # the one line of the table


def test_a_new_source_is_one_class_and_one_line_and_runs_fetch_then_split(brightening, tmp_path):
    params = load_params(write_params(tmp_path, tiny_params({"data": {"frame_size": 32}})))
    raw, processed = tmp_path / "raw", tmp_path / "processed"
    raw.mkdir(), processed.mkdir()
    cleared = []
    source = get_source("brightening")
    fetched = FetchPaths(raw / "windows.npy", raw / "digits.npy", tmp_path / "downloads")
    info, summary = source.fetch(params, tmp_path, fetched, lambda: cleared.append("fetch"))
    splits = {split: processed / f"{split}.npy" for split in SPLITS}
    paths = SplitPaths(
        fetched.windows, fetched.digits, splits, processed / "digits.npy", processed / "m.json"
    )
    source.split(params, info, paths, lambda: cleared.append("split"))

    assert summary == "32 windows" and cleared == ["fetch", "split"]
    counts = {split: len(np.load(path)) for split, path in splits.items()}
    assert counts == {"train": 16, "val": 8, "test": 8}
    assert load_json(paths.manifest)["splits"]["test"]["count"] == 8


def test_an_unknown_source_is_one_line_naming_the_known_ones():
    with pytest.raises(NextframeError, match=r"data.source: unknown source 'tape' \(known: "):
        get_source("tape")
