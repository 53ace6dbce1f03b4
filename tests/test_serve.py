"""`make serve`: the champion over HTTP, as the Makefile starts it, on the tiny model the real
stages trained. The horizon is a request parameter; the answer is `nextframe predict`'s;
malformed requests get a 400 with the reason, and the server goes on serving."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass

import numpy as np
import pytest

from nextframe.io import decode_npy, encode_npy, load_npy

from .browser import OffHostSink, free_port, process_group, proxy_env, wait_until_serving
from .helpers import PATHS, clean_env, make_recipe, nextframe_command, run

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Server:
    port: int
    sink: OffHostSink  # where the server's calls off this machine would have gone

    def post(self, body: bytes | dict, seconds: float = 120) -> tuple[int, dict]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=seconds)
        try:
            connection.request("POST", "/invocations", data, {"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory):
    """`make serve`'s command, run on the trained workdir's store, in its own process group."""
    port = free_port()
    command = make_recipe("serve", f"PORT={port}", f"STORE={trained.path}")
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with OffHostSink() as sink:
        env = clean_env(**proxy_env(sink))
        with process_group(["bash", "-c", command], log, cwd=trained.path, env=env) as process:
            wait_until_serving(f"http://127.0.0.1:{port}/ping", process, log)
            yield Server(port, sink)


@pytest.fixture(scope="module")
def context(trained) -> np.ndarray:
    """A test sequence's context frames, float32 (T, 64, 64, 1) in [0, 1]."""
    test_uint8 = load_npy(trained.path / PATHS["test"])
    return test_uint8[5, : trained.n_context].astype(np.float32) / np.float32(255)


def request(context: np.ndarray, **params) -> dict:
    body = {"inputs": context[None].tolist()}
    return body | ({"params": params} if params else {})


def test_served_frames_are_predicts_and_the_horizon_is_a_param(server, trained, context, tmp_path):
    np.save(tmp_path / "clip.npy", context)
    out = tmp_path / "predicted.npy"
    champion = "models:/nextframe-convlstm@champion"
    args = [str(tmp_path / "clip.npy"), "--horizon", "10", "--model", champion, "--out", str(out)]
    run(nextframe_command("predict", *args), trained.path)
    from_predict = np.load(out)

    started = time.perf_counter()
    status, answer = server.post(request(context, horizon=10))
    seconds = time.perf_counter() - started
    assert status == 200, answer
    served = np.asarray(answer["predictions"], dtype=np.float32)
    assert served.shape == (1, 10, 64, 64, 1)
    max_abs_diff = float(np.abs(served[0] - from_predict).max())
    print(f"served vs predict: max abs diff {max_abs_diff}; one 10-frame request {seconds:.2f} s")
    assert max_abs_diff == 0.0

    status, answer = server.post(request(context))  # no params: the trained horizon
    assert status == 200
    assert np.asarray(answer["predictions"]).shape == (1, trained.horizon, 64, 64, 1)


def test_compact_clips_are_answered_alike_and_uint8_gets_uint8(server, context):
    """A base64 `.npy` clip (float32 or uint8) gets the frames the float lists get, in its own
    form: the same float32 frames, or those frames as uint8."""
    status, answer = server.post(request(context, horizon=4))
    assert status == 200, answer
    from_lists = np.asarray(answer["predictions"][0], dtype=np.float32)
    as_uint8 = np.rint(np.clip(from_lists, 0, 1) * 255).astype(np.uint8)
    context_uint8 = np.rint(context * 255).astype(np.uint8)

    status, answer = server.post({"inputs": [encode_npy(context)], "params": {"horizon": 4}})
    assert status == 200, answer
    np.testing.assert_array_equal(decode_npy(answer["predictions"][0]), from_lists)

    clip = encode_npy(context_uint8)
    status, answer = server.post({"inputs": [clip, clip], "params": {"horizon": 4}})
    assert status == 200, answer
    got = [decode_npy(c) for c in answer["predictions"]]
    assert got[0].dtype == np.uint8
    # frames from uint8 context: within one grey level of the float answer's, rounded
    assert np.abs(got[1].astype(int) - as_uint8.astype(int)).max() <= 1


def pickled_npy() -> str:
    import base64
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return base64.b64encode(buffer.getvalue()).decode()


def forged_npy(shape: tuple[int, ...]) -> str:
    """100-odd bytes of `.npy` whose header claims `shape` uint8."""
    import base64
    import io

    buffer = io.BytesIO()
    header = {"descr": "|u1", "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return base64.b64encode(buffer.getvalue() + bytes(20)).decode()


# Malformed requests, and what the answer must say.
MALFORMED = {
    "wrong shape": (
        lambda context: request(context[:, ::2, ::2]),
        "context must be (N, T, 64, 64, 1), got shape (1, {n_context}, 32, 32, 1)",
    ),
    "wrong dtype": (
        lambda context: {"inputs": [[[["a frame"]]]]},
        "clip 0: must be nested lists of numbers (T, H, W, C) of one shape or a base64 .npy",
    ),
    "ragged lists": (
        lambda context: {"inputs": [[[[0.5]], [[0.5], [0.5]]]]},
        "got ragged or mixed lists",
    ),
    "missing field": (
        lambda context: {"params": {"horizon": 10}},
        "Request payload must be a dictionary with 'inputs' key",
    ),
    "not base64": (
        lambda context: {"inputs": ["not an array"]},
        "clip 0: text must be a base64 .npy file",
    ),
    "a pickled array": (
        lambda context: {"inputs": [pickled_npy()]},
        "clip 0: text must be a base64 .npy file",
    ),
    "clips of two lengths": (
        lambda context: {"inputs": [encode_npy(context), encode_npy(context[:2])]},
        "the clips of one request must have one shape",
    ),
    "huge horizon": (
        lambda context: request(context, horizon=10**9),
        "horizon must be between 1 and 100, got 1000000000",
    ),
    "members of a video model": (
        lambda context: {"inputs": [encode_npy(context)], "params": {"members": 4}},
        "members: a video model gives one forecast; members come from radar models",
    ),
    "values out of range": (
        lambda context: request(context * 255),
        "context: values must lie in [0, 1] (the model's units)",
    ),
    "a forged .npy header": (  # its (10^6, 10^6) would be 931 GiB if np.load believed it
        lambda context: {"inputs": [forged_npy((10**6, 10**6))]},
        "clip 0: must be frames (T, H, W, C) or (T, H, W), got shape (1000000, 1000000)",
    ),
    "a single frame": (
        lambda context: request(context[:1]),
        "with N >= 1 clips of T >= 2 frames, got shape (1, 1, 64, 64, 1)",
    ),
    "not JSON": (
        lambda context: b"{inputs: [",
        "Ensure that input is a valid JSON formatted string",
    ),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_a_malformed_request_gets_400_with_the_reason_and_the_server_goes_on(
    server, trained, context, name
):
    make, reason = MALFORMED[name]
    status, answer = server.post(make(context))
    print(f"{name}: {status} {answer['message'][-200:]!r}")
    assert status == 400
    assert reason.format(n_context=trained.n_context) in answer["message"]
    assert "stack_trace" not in answer
    status, _ = server.post(request(context, horizon=2))
    assert status == 200


def test_the_server_calls_nothing_off_host(server, context):
    assert server.post(request(context, horizon=1))[0] == 200
    assert server.sink.seen == []
