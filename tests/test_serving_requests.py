"""What the served pyfunc makes of a request, called directly (no server, no Keras): a forged
`.npy` header or a request past the limits is a 400 with the reason before anything is
allocated, JSON numbers are read in the model's units whatever JSON wrote, out-of-range values
are refused, a strided model keeps every k-th frame, and no answer ever carries a traceback."""

from __future__ import annotations

import base64
import io
import json
import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest
from mlflow.exceptions import MlflowException
from mlflow.pyfunc.scoring_server import invocations

from nextframe.domains.video.domain import check_request
from nextframe.errors import NextframeError
from nextframe.frames import FrameFormat
from nextframe.io import encode_npy
from nextframe.ops.serving import (
    RequestLimits,
    RolloutModel,
    read_request,
)

GREY_8 = FrameFormat(8, 1)
RAIN_MM = FrameFormat(8, 1, value_range=(0.0, 50.0))


@pytest.fixture
def rollout(monkeypatch):
    """A stand-in for `nextframe.rollout` (no Keras): the next frames are the last one again;
    `calls` records what the model was given."""
    calls = []

    def predict_future(model, context, horizon):
        calls.append(context)
        return np.repeat(context[:, -1:], horizon, axis=1)

    module = types.ModuleType("nextframe.rollout")
    module.predict_future, module.calls = predict_future, calls
    monkeypatch.setitem(sys.modules, "nextframe.rollout", module)
    return module


def served(frames: FrameFormat, limits: RequestLimits | None = None) -> RolloutModel:
    model = RolloutModel()
    model.predictor = SimpleNamespace(frames=frames, horizon=2)
    if limits is not None:
        model.limits = limits
    return model


def forged_npy(shape: tuple[int, ...], n_data_bytes: int = 20) -> str:
    """A `.npy` whose header claims `shape` uint8 but holds `n_data_bytes` of data."""
    buffer = io.BytesIO()
    header = {"descr": "|u1", "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return base64.b64encode(buffer.getvalue() + bytes(n_data_bytes)).decode()


class Served:
    """The served model as MLflow's scoring server calls it (a type-hint signature)."""

    metadata = SimpleNamespace(_is_signature_from_type_hint=lambda: True)

    def __init__(self, model: RolloutModel):
        self.model = model

    def predict(self, data, params=None):
        return self.model.predict(None, data, params)


def answer_of(model: RolloutModel, body: dict) -> tuple[int, str]:
    """Status and body of MLflow's scoring server's answer to `body`."""
    try:
        result = invocations(json.dumps(body), "application/json", Served(model), None)
    except MlflowException as exc:
        return exc.get_http_status_code(), exc.serialize_as_json()
    return result.status, result.response


@pytest.mark.parametrize(
    ("shape", "reason"),
    [
        ((10**6, 10**6), "must be frames (T, H, W, C) or (T, H, W), got shape (1000000, 1000000)"),
        ((10**6, 8, 8, 1), "clip 0: 1000000 frames, more than this server's limit of 256"),
        ((4, 10**5, 10**5, 1), "larger than this server's limit of 4096 pixels a side"),
        ((100, 8, 8, 1), "its .npy header claims (100, 8, 8, 1) uint8 (6400 bytes), but 20"),
    ],
)
def test_a_forged_npy_header_is_a_400_with_the_reason_and_no_traceback(rollout, shape, reason):
    status, body = answer_of(served(GREY_8), {"inputs": [forged_npy(shape)]})
    assert status == 400 and reason in json.loads(body)["message"], body
    assert "Traceback" not in body and "stack_trace" not in body
    assert rollout.calls == []


def test_an_unexpected_failure_is_a_500_with_no_traceback(monkeypatch, rollout):
    def broken(model, context, horizon):
        raise RuntimeError("a backend failure")

    monkeypatch.setattr(rollout, "predict_future", broken)
    clip = np.zeros((4, 8, 8, 1), np.uint8)
    status, body = answer_of(served(GREY_8), {"inputs": [encode_npy(clip)]})
    assert status == 500 and "the prediction failed on the server" in body, body
    assert "Traceback" not in body and "stack_trace" not in body and "backend" not in body


@pytest.mark.parametrize(
    ("limits", "inputs", "reason"),
    [
        (
            RequestLimits(max_mb=0.01),
            [encode_npy(np.zeros((80, 8, 8, 1), np.float32))],
            "the request's clips hold 0.0195 MB, more than this server's limit of 0.01 MB "
            "(NEXTFRAME_SERVE_MAX_MB)",
        ),
        (
            RequestLimits(max_mb=0.01),
            [np.zeros((80, 8, 8, 1)).tolist()],
            "hold 0.0195 MB, more than this server's limit of 0.01 MB",
        ),
        (
            RequestLimits(max_clips=2),
            [encode_npy(np.zeros((4, 8, 8, 1), np.uint8))] * 3,
            "3 clips, more than this server's limit of 2 (NEXTFRAME_SERVE_MAX_CLIPS)",
        ),
        (
            RequestLimits(max_context=3),
            [np.zeros((4, 8, 8, 1)).tolist()],
            "clip 0: 4 frames, more than this server's limit of 3 (NEXTFRAME_SERVE_MAX_CONTEXT)",
        ),
    ],
)
def test_a_request_past_a_limit_is_a_400_naming_it(rollout, limits, inputs, reason):
    status, body = answer_of(served(GREY_8, limits), {"inputs": inputs})
    assert status == 400 and reason in body, body
    assert rollout.calls == []


def test_limits_come_from_the_environment_where_the_server_starts():
    assert RequestLimits.from_environ({}) == RequestLimits(64.0, 64, 256, 4096)
    environ = {"NEXTFRAME_SERVE_MAX_MB": "256", "NEXTFRAME_SERVE_MAX_CLIPS": "8"}
    assert RequestLimits.from_environ(environ) == RequestLimits(max_mb=256.0, max_clips=8)
    with pytest.raises(NextframeError, match="NEXTFRAME_SERVE_MAX_SIDE must be a positive"):
        RequestLimits.from_environ({"NEXTFRAME_SERVE_MAX_SIDE": "-1"})


def test_json_numbers_are_read_in_the_models_units_whatever_json_wrote():
    """`JSON.stringify` writes 1.0 as 1: integer lists are numbers like any other."""
    rain_mm = [[[[0], [10]], [[25], [50]]]] * 2  # (T=2, 2, 2, 1) integer mm/h
    clips, _ = read_request([rain_mm])
    unit = check_request(clips, 1, FrameFormat(2, 1, value_range=(0.0, 50.0)))
    np.testing.assert_allclose(unit[0, 0, :, :, 0], [[0.0, 0.2], [0.5, 1.0]])
    black_and_white = [[[[0], [1]], [[1], [0]]]] * 2
    clips, _ = read_request([black_and_white])
    np.testing.assert_array_equal(check_request(clips, 1, FrameFormat(2, 1))[0, 0, 0, :, 0], [0, 1])


@pytest.mark.parametrize(
    ("frames", "value", "reason"),
    [
        (RAIN_MM, 60.0, "context: values must lie in [0, 50] (the model's data.value_range), "),
        (GREY_8, 1.5, "context: values must lie in [0, 1] (the model's units), found 1.5 to 1.5"),
        (GREY_8, 255, "found 255 to 255; frames of 0-255 go as a base64 uint8 .npy"),
    ],
)
def test_values_outside_the_models_range_are_a_400_naming_the_range(rollout, frames, value, reason):
    clip = np.full((4, 8, 8, 1), value).tolist()
    status, body = answer_of(served(frames), {"inputs": [clip]})
    assert status == 400 and reason in body, body
    assert rollout.calls == []


def test_a_strided_model_keeps_every_kth_frame_of_a_clip_sent_at_its_own_rate(rollout):
    """Frame t of the clip holds t / 100: the model is given frames 1, 4, 7 and 10."""
    clip = np.broadcast_to((np.arange(11) / 100)[:, None, None, None], (11, 8, 8, 1))
    model = served(FrameFormat(8, 1, frame_stride=3))
    model.predict(None, [clip.tolist()], {"horizon": 1})
    (given,) = rollout.calls
    np.testing.assert_allclose(given[0, :, 0, 0, 0], [0.01, 0.04, 0.07, 0.10], rtol=1e-6)
    with pytest.raises(NextframeError, match=r"T >= 4 frames at their own rate \(the model keeps"):
        check_request(np.zeros((1, 3, 8, 8, 1), np.uint8), 1, FrameFormat(8, 1, frame_stride=3))


def test_the_request_example_stored_with_a_strided_model_is_one_it_takes():
    from nextframe.ops.registry import request_example

    frames = FrameFormat(8, 1, frame_stride=3)
    inputs, params = request_example(frames, 2)
    clips, _ = read_request(inputs)
    assert check_request(clips, params["horizon"], frames).shape == (1, 2, 8, 8, 1)
