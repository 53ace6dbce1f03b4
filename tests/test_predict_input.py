"""What `nextframe predict` and the demo make of a user's clip, without a model or Keras: the
last frames at the model's rate (its recorded `frame_stride` and `n_context`), a note for each
change, only those frames held, and one line for a corrupt file."""

from __future__ import annotations

import json
import sys
import tracemalloc
import weakref
import zipfile

import numpy as np
import pytest

from nextframe.clips import Clip, read_clip_tail
from nextframe.data.export import write_clip
from nextframe.errors import NextframeError
from nextframe.frames import FrameFormat
from nextframe.ops.registry import frame_format_of
from nextframe.params import parse_params
from nextframe.predicting import context_length, read_context

from .helpers import tiny_params


def numbered_frames(n_frames: int, size: int = 8) -> np.ndarray:
    """uint8 (T, size, size): frame t is filled with t, so a frame read tells its index."""
    steps = np.arange(n_frames, dtype=np.uint8)[:, None, None]
    return np.broadcast_to(steps, (n_frames, size, size))


def indices(context: np.ndarray) -> list[int]:
    return [round(float(frame.mean()) * 255) for frame in context]


def saved_model_format(tmp_path, fmt: FrameFormat):
    """The format as a `.keras` file records it (its config.json), read back as predict does."""
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps({"config": {"frames": fmt.to_config()}}))
    return frame_format_of(path)


def test_a_strided_folder_model_records_its_stride_and_predict_keeps_every_kth_frame(tmp_path):
    params = tiny_params()
    params["data"] |= {"source": "folder", "frame_stride": 3, "frame_size": 8}
    data = parse_params(params).data
    fmt = saved_model_format(tmp_path, FrameFormat.of(data, data.n_context))
    assert (fmt.frame_stride, fmt.n_context) == (3, data.n_context)

    np.save(tmp_path / "clip.npy", numbered_frames(30))
    context, notes = read_context(tmp_path / "clip.npy", fmt, context_length(None, fmt))
    assert indices(context) == [20, 23, 26, 29]  # every 3rd, ending at the last frame
    assert "one frame in 3 kept, as the model was trained (frame_stride)" in notes
    assert "the last 4 of the clip's 30 frames given" in notes


def test_a_model_saved_before_strides_were_recorded_reads_every_frame(tmp_path):
    config = FrameFormat(8, 1).to_config()
    config.pop("frame_stride"), config.pop("n_context")
    assert FrameFormat.from_config(config) == FrameFormat(8, 1, frame_stride=1)
    params = tiny_params()
    params["data"]["frame_stride"] = 3
    moving_mnist = parse_params(params).data
    assert FrameFormat.of(moving_mnist).frame_stride == 1  # only a folder's clips are strided


def test_a_stride_that_leaves_too_few_frames_says_so(tmp_path):
    np.save(tmp_path / "short.npy", numbered_frames(3))
    with pytest.raises(NextframeError, match=r"short.npy: needs at least 2 context frames, got 1"):
        read_context(tmp_path / "short.npy", FrameFormat(8, 1, frame_stride=3), 4)


def alive_frames_while_reading(monkeypatch, read) -> int:
    """The most frames a clip's reader yielded that were alive at once during `read()`."""
    alive, most = [0], [0]
    original = Clip.frames

    def dead() -> None:
        alive[0] -= 1

    def counted(self, fmt, notes=None):
        for frame in original(self, fmt, notes):
            alive[0] += 1
            most[0] = max(most[0], alive[0])
            weakref.finalize(frame, dead)
            yield frame

    monkeypatch.setattr(Clip, "frames", counted)
    read()
    return most[0]


def test_a_long_video_holds_only_the_frames_it_keeps(tmp_path, monkeypatch):
    frames = np.repeat(numbered_frames(120, 16)[..., None] * 2, 3, axis=-1)
    write_clip(tmp_path / "long.mkv", np.ascontiguousarray(frames))  # lossless FFV1
    fmt = FrameFormat(16, 3, frame_stride=2)
    result = {}

    def read():
        result["context"], _, result["n_total"] = read_clip_tail(tmp_path / "long.mkv", fmt, 5)

    held = alive_frames_while_reading(monkeypatch, read)
    assert result["n_total"] == 120 and len(result["context"]) == 5
    assert [i // 2 for i in indices(result["context"][..., :1])] == [111, 113, 115, 117, 119]
    assert held <= (5 - 1) * 2 + 2, held  # the queue's 9 and the frame being read


def test_an_arrays_frames_before_the_context_are_never_read(tmp_path):
    """Frames before the tail are NaN: reading them would refuse the clip."""
    frames = np.full((50, 8, 8), np.nan, np.float32)
    frames[-4:] = 0.5
    np.save(tmp_path / "clip.npy", frames)
    np.savez_compressed(tmp_path / "clip.npz", frames=frames)
    for name in ("clip.npy", "clip.npz"):
        context, _, n_total = read_clip_tail(tmp_path / name, FrameFormat(8, 1), 4)
        assert n_total == 50 and context.shape == (4, 8, 8, 1) and (context == 0.5).all(), name


def test_an_npz_member_is_streamed_not_loaded_whole(tmp_path):
    frames = np.zeros((400, 64, 64), np.float32)  # 6.6 MB
    np.savez_compressed(tmp_path / "long.npz", frames=frames)
    from nextframe.clips import _npz_member_tail, clips_of

    (clip,) = clips_of(tmp_path / "long.npz")
    tracemalloc.start()
    try:
        n_total, tail = _npz_member_tail(clip, 4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n_total == 400 and len(tail) == 4
    assert peak < frames.nbytes / 8, peak


def corrupt(tmp_path, name: str, how: str):
    frames = np.arange(40 * 64, dtype=np.uint8).reshape(40, 8, 8)
    np.savez_compressed(tmp_path / name, frames=frames)
    data = bytearray((tmp_path / name).read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    else:  # one byte of the compressed member flipped
        data[len(data) // 3] ^= 0xFF
    (tmp_path / name).write_bytes(bytes(data))
    return tmp_path / name


@pytest.mark.parametrize("how", ["truncated", "flipped"])
def test_a_corrupt_npz_is_one_error_naming_it(tmp_path, how):
    path = corrupt(tmp_path, f"{how}.npz", how)
    with pytest.raises(NextframeError, match=f"{how}.npz") as error:
        read_context(path, FrameFormat(8, 1), 4)
    assert "\n" not in str(error.value)


def test_the_demo_predicts_from_an_uploads_last_frames_at_the_models_rate(tmp_path, monkeypatch):
    from types import ModuleType, SimpleNamespace

    from nextframe.ops.demo import Predictor

    given = []

    def predict_future(model, context, horizon):
        given.append(context)
        return np.repeat(context[:, -1:], horizon, axis=1)

    rollout = ModuleType("nextframe.rollout")
    rollout.predict_future = predict_future
    monkeypatch.setitem(sys.modules, "nextframe.rollout", rollout)
    model = SimpleNamespace(frames=FrameFormat(8, 1, frame_stride=2, n_context=3))
    np.save(tmp_path / "clip.npy", numbered_frames(12))
    shown = Predictor(model, [], 10, tmp_path).upload(str(tmp_path / "clip.npy"), 2)
    assert indices(given[0][0]) == [7, 9, 11]
    assert shown.caption.startswith("clip.npy: 3 frames given, 2 predicted closed loop (")
    assert "one frame in 2 kept" in shown.caption and "the last 3 of the clip's 12" in shown.caption


def test_every_change_to_a_users_frames_is_a_note_of_predicts(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    write_clip(tmp_path / "colour.mkv", rng.integers(0, 256, (6, 16, 24, 3), np.uint8))
    np.save(tmp_path / "rgba.npy", rng.integers(0, 256, (6, 16, 16, 4), np.uint8))
    (tmp_path / "pngs").mkdir()
    for t in range(4):
        frame = rng.integers(0, 256, (16, 16, 4), np.uint8)
        Image.fromarray(frame, "RGBA").save(tmp_path / "pngs" / f"frame{t}.png")
    cases = {
        "colour.mkv": (
            FrameFormat(16, 1, aspect="pad"),
            ["frames of 24x16 padded and resized to the model's 16x16", "RGB made grey"],
        ),
        "rgba.npy": (FrameFormat(16, 3), ["alpha channel dropped"]),
        "pngs": (FrameFormat(8, 3, frame_stride=2), ["alpha channel dropped", "one frame in 2"]),
    }
    for name, (fmt, expected) in cases.items():
        _, notes = read_context(tmp_path / name, fmt, 2)
        for note in expected:
            assert any(n.startswith(note) for n in notes), (name, note, notes)
