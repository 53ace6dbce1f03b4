"""Your own videos, the whole way: a folder of colour MP4 clips (encoded here with PyAV), the
real `dvc repro` with tiny params, then `nextframe predict` on one of the clips and `make
serve` answering a colour request."""

from __future__ import annotations

import http.client
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from nextframe.clips import read_clip
from nextframe.frames import FrameFormat
from nextframe.model import load_predictor
from nextframe.render import BLANK_GREY, CONTEXT_RGB, PREDICTED_RGB

from ..browser import free_port, process_group, wait_until_serving
from ..helpers import (
    PATHS,
    clean_env,
    git_commit,
    make_recipe,
    nextframe_command,
    recorded_run,
    run,
    tiny_repo,
)

pytestmark = pytest.mark.e2e

SIZE = 32
COLOUR = {
    # 10 epochs, not 1: its 3 steps leave the predictions black (MSE near all-zero's); an
    # epoch after the first takes 0.3 s here.
    "epochs": 10,
    "data": {
        "source": "folder",
        "folder": "clips",
        "channels": 3,
        "frame_size": SIZE,
        "window_stride": 4,
        "val_fraction": 0.25,
        "test_fraction": 0.25,
    },
    "model": {"patch_size": 2},
}


@dataclass(frozen=True)
class Reproduced:
    path: Path
    clips: list[Path]


@pytest.fixture(scope="module")
def colour(tmp_path_factory) -> Reproduced:
    """A tiny copy whose clips are 12 coloured Moving MNIST MP4s of 16 frames in one folder
    (split from their content), reproduced once."""
    root = tmp_path_factory.mktemp("folder")
    repo = tiny_repo(root / "repo", COLOUR)
    exported = root / "exported"
    args = ["export", str(exported), "--colour", "--format", "mp4", "--frames", "16"]
    run(nextframe_command(*args, "--train", "8", "--val", "2", "--test", "2"), repo)
    (repo / "clips").mkdir()
    for index, clip in enumerate(sorted(exported.rglob("*.mp4"))):
        shutil.copy2(clip, repo / "clips" / f"clip_{index:02d}.mp4")
    git_commit(repo, "my clips")
    run(["dvc", "repro"], repo)
    return Reproduced(repo, sorted((repo / "clips").iterdir()))


def test_repro_trains_and_evaluates_in_colour(colour):
    """The model beats predicting black, and the frames it predicts in render's grid are in
    colour (a grey model's have no pixel whose channels differ)."""
    repo = colour.path
    report = json.loads((repo / PATHS["eval_metrics"]).read_text())
    assert set(report["baselines"]) == {"zeros", "copy_last", "mean_context", "extrapolation"}
    model_mse, zeros_mse = report["model"]["mse"], report["baselines"]["zeros"]["mse"]
    assert model_mse < zeros_mse, f"closed-loop MSE {model_mse:.1f}, all-zero {zeros_mse:.1f}"
    model = load_predictor(repo / PATHS["model"])
    assert model.frames == FrameFormat(SIZE, 3)
    grid = np.asarray(Image.open(repo / PATHS["grid"]).convert("RGB")).astype(int)
    predicted = _predicted_tiles(grid)
    assert predicted.shape == (2 * 4, SIZE, SIZE, 3)  # 2 sequences x 4 predicted frames
    coloured = (predicted.max(axis=-1) - predicted.min(axis=-1)) > 30
    assert coloured.mean() > 0.05, f"{coloured.mean():.1%} of the predicted pixels in colour"
    assert len(list((repo / PATHS["gifs"]).glob("*.gif"))) == 2


def _predicted_tiles(grid: np.ndarray) -> np.ndarray:
    """The predicted frames of render's grid: the columns under its red header bar, in the
    rows level with the blank tiles a context column has in each prediction row."""
    red = np.all(grid == PREDICTED_RGB, axis=-1)
    bar_y = int(np.argmax(red.sum(axis=1)))  # the header's bar: the reddest row
    columns = _runs(red[bar_y])
    x0, x1 = _runs(np.all(grid[bar_y] == CONTEXT_RGB, axis=-1))[0]  # the first context column
    blank = np.all(grid[:, x0:x1] == BLANK_GREY, axis=(1, 2))
    tiles = [(y0, y1) for y0, y1 in _runs(blank) if y1 - y0 == x1 - x0]
    rows = tiles[::2]  # each sequence's prediction row, then its |error| row
    return np.stack([grid[y0:y1, a:b] for y0, y1 in rows for a, b in columns])


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True in a 1-D mask."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def test_the_split_is_by_clip_on_the_written_files(colour):
    repo = colour.path
    windows = {
        split: np.load(repo / f"data/processed/{split}.npy") for split in ("train", "val", "test")
    }
    assert all(w.shape[1:] == (8, SIZE, SIZE, 3) for w in windows.values())
    train_frames = {frame.tobytes() for window in windows["train"] for frame in window}
    for split in ("val", "test"):
        assert len(windows[split]) > 0
        assert not any(f.tobytes() in train_frames for w in windows[split] for f in w), split


def test_the_mlflow_dataset_is_the_folder(colour):
    run_ = recorded_run(colour.path)
    (dataset_input,) = run_.inputs.dataset_inputs
    dataset = dataset_input.dataset
    manifest = json.loads((colour.path / PATHS["manifest"]).read_text())
    assert dataset.name == "clips"
    assert dataset.digest == manifest["dataset"]["digest"][:16]
    profile = json.loads(dataset.profile)
    assert sum(profile["clips"].values()) == len(colour.clips)
    assert profile["windows"] == {s: manifest["splits"][s]["count"] for s in profile["windows"]}
    assert run_.data.params["data.channels"] == "3"


def test_predict_takes_a_video_and_writes_npy_gif_and_mp4(colour, tmp_path):
    clip = colour.clips[0]
    out = tmp_path / "out" / "predicted.npy"
    result = run(
        nextframe_command("predict", str(clip), "--horizon", "6", "--out", str(out)), colour.path
    )
    predicted = np.load(out)
    assert predicted.shape == (6, SIZE, SIZE, 3) and predicted.dtype == np.float32
    assert out.with_suffix(".gif").stat().st_size > 0
    video, _ = read_clip(out.with_suffix(".mp4"), FrameFormat(SIZE, 3))
    # the model's context: the clip's last frames
    n_context = yaml.safe_load((colour.path / "params.yaml").read_text())["data"]["n_context"]
    assert len(video) == n_context + 6  # the context, then the predicted frames
    assert f"predict: 6 frames after {n_context} given in" in result.stdout
    assert f"the last {n_context} of the clip's 16 frames given" in result.stdout


def test_make_serve_answers_a_colour_request(colour, tmp_path):
    port = free_port()
    command = make_recipe("serve", f"PORT={port}", f"STORE={colour.path}")
    log = tmp_path / "serve.log"
    context, _ = read_clip(colour.clips[1], FrameFormat(SIZE, 3))
    body = json.dumps({"inputs": context[None, :6].tolist(), "params": {"horizon": 3}})
    with process_group(["bash", "-c", command], log, cwd=colour.path, env=clean_env()) as server:
        wait_until_serving(f"http://127.0.0.1:{port}/ping", server, log)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = json.loads(response.read())
        connection.close()
    assert response.status == 200, answer
    assert np.asarray(answer["predictions"]).shape == (1, 3, SIZE, SIZE, 3)


def test_a_changed_clip_makes_fetch_stale_and_nothing_else_directly(colour):
    repo = colour.path
    clip = colour.clips[-1]
    original = clip.read_bytes()
    try:
        clip.write_bytes(colour.clips[0].read_bytes())
        status = run(["dvc", "status", "fetch", "train"], repo).stdout
    finally:
        clip.write_bytes(original)
    assert "fetch:" in status and "modified:" in status and "clips" in status, status
    assert "train:" not in status, status
