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

from nextframe.io import load_npy

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


# Malformed requests, and what the answer must say.
MALFORMED = {
    "wrong shape": (
        lambda context: request(context[:, ::2, ::2]),
        "Shape of input (1, {n_context}, 32, 32, 1) does not match expected shape",
    ),
    "wrong dtype": (
        lambda context: {"inputs": [[[["a frame"]]]]},
        "could not convert string to float: 'a frame'",
    ),
    "missing field": (
        lambda context: {"params": {"horizon": 10}},
        "The input must be a JSON dictionary with exactly one of the input fields",
    ),
    "huge horizon": (
        lambda context: request(context, horizon=10**9),
        "horizon must be between 1 and 100, got 1000000000",
    ),
    "values out of range": (
        lambda context: request(context * 255),
        "context: float values must lie in [0, 1]",
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
    status, _ = server.post(request(context, horizon=2))
    assert status == 200


def test_the_server_calls_nothing_off_host(server, context):
    assert server.post(request(context, horizon=1))[0] == 200
    assert server.sink.seen == []
