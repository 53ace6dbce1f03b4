"""`nextframe predict` as a user runs it, on the tiny model the real stages trained: the same
frames as the evaluate stage, from a file or the registry, any horizon, other frame sizes,
and one line, exit 1 and no output for every bad clip."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from PIL import Image

from nextframe.frames import to_unit
from nextframe.io import load_npy
from nextframe.metrics import per_step, summarize
from nextframe.model import load_predictor
from nextframe.rollout import predict_future

from .helpers import PATHS, nextframe_command, run

CHAMPION = "models:/nextframe-convlstm@champion"


def predict(workdir, *args: str, check: bool = True):
    return run(nextframe_command("predict", *args), workdir, check=check)


def gif_frames(path) -> int:
    with Image.open(path) as image:
        return image.n_frames


@pytest.fixture(scope="module")
def evaluate_predictions(trained) -> np.ndarray:
    """The evaluate stage's closed-loop predictions of every test sequence: its own rollout
    call on its own batches, checked against the MSE it recorded in metrics/eval.json."""
    test_uint8 = load_npy(trained.path / PATHS["test"])
    model = load_predictor(trained.path / PATHS["model"])
    batch_size = trained.params["evaluate"]["batch_size"]
    context = to_unit(test_uint8[:, : trained.n_context])
    predictions = predict_future(model, context, trained.horizon, batch_size)
    truth = to_unit(test_uint8[:, trained.n_context :])
    report = json.loads((trained.path / PATHS["eval_metrics"]).read_text())
    assert summarize(per_step(predictions, truth))["mse"] == report["model"]["mse"]
    return predictions


def test_predict_from_the_champion_gives_the_evaluate_stages_frames(
    trained, evaluate_predictions, tmp_path
):
    """Exactly the frames of evaluate's rollout on the same batch (one clip). Beside 31 other
    clips, as evaluate batches them, TensorFlow's LayerNormalization rounds some values
    differently (a vectorised or a scalar rsqrt, by position in the batch): a float32 ulp."""
    index = 3
    test_uint8 = load_npy(trained.path / PATHS["test"])
    clip = tmp_path / "sequence.npy"
    np.save(clip, test_uint8[index, : trained.n_context])
    out = tmp_path / "out" / "predicted.npy"
    horizon = str(trained.horizon)
    result = predict(
        trained.path, str(clip), "--model", CHAMPION, "--horizon", horizon, "--out", str(out)
    )
    predicted = np.load(out)
    assert predicted.dtype == np.float32 and predicted.shape == (trained.horizon, 64, 64, 1)

    model = load_predictor(trained.path / PATHS["model"])
    context = to_unit(test_uint8[index : index + 1, : trained.n_context])
    alone = predict_future(model, context, trained.horizon)[0]
    assert float(np.abs(predicted - alone).max()) == 0.0
    max_abs_diff = float(np.abs(predicted - evaluate_predictions[index]).max())
    print(f"max abs diff, predict vs the evaluate stage on test sequence {index}: {max_abs_diff}")
    assert max_abs_diff <= 1e-6
    assert gif_frames(out.with_suffix(".gif")) == trained.n_context + trained.horizon
    assert "Traceback" not in result.stderr


def test_any_horizon_from_a_gif_of_another_size_resized_with_a_note(trained, tmp_path):
    test_uint8 = load_npy(trained.path / PATHS["test"])
    frames = test_uint8[0, : trained.n_context, ::2, ::2, 0]
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(tmp_path / "small.gif", save_all=True, append_images=images[1:], loop=0)
    horizon = trained.horizon * 3  # longer than it was trained for
    result = predict(
        tmp_path,
        "small.gif",
        "--model",
        str(trained.path / PATHS["model"]),
        "--horizon",
        str(horizon),
    )
    assert "note: frames of 32x32 resized to the model's 64x64" in result.stdout
    predicted = np.load(tmp_path / "predictions/small.npy")
    assert predicted.shape == (horizon, 64, 64, 1)
    assert predicted.min() >= 0.0 and predicted.max() <= 1.0
    assert gif_frames(tmp_path / "predictions/small.gif") == trained.n_context + horizon


def truncated_npy(path):
    np.save(path, np.zeros((10, 64, 64), np.uint8))
    path.write_bytes(path.read_bytes()[:5000])


def truncated_npz(path):
    np.savez_compressed(path, frames=np.zeros((10, 64, 64), np.uint8))
    path.write_bytes(path.read_bytes()[:-140])  # its zip directory cut off


def pickled_npy(path):
    np.save(path, np.array([{"frames": 1}, None], dtype=object), allow_pickle=True)


def truncated_gif(path):
    frames = np.random.default_rng(0).integers(0, 256, (10, 64, 64), dtype=np.uint8)
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], loop=0)
    path.write_bytes(path.read_bytes()[:3000])


def plain_pickle(path):
    path.write_bytes(pickle.dumps(np.zeros((10, 64, 64))))


def save(array):
    return lambda path: np.save(path, array)


# What a user might hand over by mistake, and the line that answers it.
BAD_CLIPS = {
    "wrong_rank.npy": (save(np.zeros((64, 64), np.uint8)), "an array of rank 2 (64, 64)"),
    "wrong_dtype.npy": (
        save(np.zeros((10, 64, 64), np.int64)),
        "dtype int64 is neither uint8 (0-255)",
    ),
    "wrong_range.npy": (
        save(np.full((10, 64, 64), 2.0, np.float32)),
        "float values must lie in [0, 1], found 2 to 2",
    ),
    "one_frame.npy": (save(np.zeros((1, 64, 64), np.uint8)), "needs at least 2 context frames"),
    "nan.npy": (save(np.full((10, 64, 64), np.nan, np.float32)), "4096 values are NaN"),
    "truncated.npy": (truncated_npy, "truncated or corrupt array"),
    "truncated.npz": (truncated_npz, "truncated or corrupt"),
    "pickled.npy": (pickled_npy, "holds Python objects (pickled)"),
    "pickle.pkl": (plain_pickle, "not a clip: read are .mp4"),
    "truncated.gif": (truncated_gif, "truncated or corrupt GIF"),
    "text.mp4": (lambda path: path.write_text("hello"), "not a readable video"),
    "missing.npy": (None, "file not found"),
}


@pytest.mark.parametrize("name", sorted(BAD_CLIPS))
def test_a_bad_clip_gets_one_line_exit_1_and_no_output(trained, tmp_path, name):
    make, message = BAD_CLIPS[name]
    clip = tmp_path / name
    if make is not None:
        make(clip)
    model = str(trained.path / PATHS["model"])
    result = predict(tmp_path, str(clip), "--model", model, check=False)
    print(f"{name}: {result.stderr.strip()}")
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {clip}") and message in line, line
    assert not (tmp_path / "predictions").exists()


def test_a_missing_model_is_one_line_before_the_clip_is_read(tmp_path):
    np.save(tmp_path / "clip.npy", np.zeros((4, 64, 64), np.uint8))
    result = predict(tmp_path, "clip.npy", "--model", "no/such.keras", check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: no/such.keras: model file not found (run `make repro` first?)"
    ]


def test_a_failed_prediction_leaves_earlier_outputs_as_they_were(trained, tmp_path):
    out = tmp_path / "earlier.npy"
    out.write_bytes(b"earlier")
    np.save(tmp_path / "one_frame.npy", np.zeros((1, 64, 64), np.uint8))
    model = str(trained.path / PATHS["model"])
    result = predict(tmp_path, "one_frame.npy", "--model", model, "--out", str(out), check=False)
    assert result.returncode == 1
    assert out.read_bytes() == b"earlier" and not out.with_suffix(".gif").exists()


def test_horizon_below_one_is_refused(tmp_path):
    np.save(tmp_path / "clip.npy", np.zeros((4, 64, 64), np.uint8))
    result = predict(tmp_path, "clip.npy", "--horizon", "0", check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["error: --horizon must be at least 1, got 0"]


def test_members_of_a_video_model_are_refused_saying_which_models_give_them(trained, tmp_path):
    np.save(tmp_path / "clip.npy", np.zeros((4, 64, 64), np.uint8))
    model = str(trained.path / PATHS["model"])
    result = predict(tmp_path, "clip.npy", "--model", model, "--members", "4", check=False)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "--members: a video model gives one forecast" in result.stderr
    assert "data.source: radar" in result.stderr
    assert not (tmp_path / "predictions").exists()


def test_help_names_the_inputs_and_the_model_uri(tmp_path):
    result = run(nextframe_command("predict", "--help"), tmp_path)
    assert "models:/nextframe-convlstm@champion" in result.stdout
    assert "--horizon" in result.stdout and ".npy" in result.stdout and "GIF" in result.stdout
    assert ".mp4" in result.stdout
