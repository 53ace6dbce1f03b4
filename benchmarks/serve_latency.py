"""`make serve` at interactive speed: the compiled rollout behind the lean request path against
the served model as it was (eager rollout, tensor signature, float nested lists), in one run.

Both serve the default architecture (params.yaml's `model`, untrained weights: latency does
not depend on them) through `make serve`'s own command (`mlflow models serve`, local
environment): today's with `WORKERS=1`, as it was; the lean one with the Makefile's default
(one worker per core). Measured, each on its own server:
- 1 clip x 10 frames, horizon 10, --requests one after another: p50 and p95 (the lean server
  with its compact form, base64 float32 `.npy` in and out, the same frames as the old float
  lists; and with the nested float lists too);
- 8 clips x 10 frames: p50;
- 4 clients at once, --per-client requests each, every fifth malformed (a clip of the wrong
  size): requests/s, and that every valid one got 200 and every malformed one 400, and the
  server still answers.

Last line: `ratio <eager p50 / compiled p50>` for 1 clip x 10 frames.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from nextframe.frames import FrameFormat
from nextframe.io import decode_npy, encode_npy
from nextframe.model import build_model, save_predictor
from nextframe.ops.processes import answers, free_port, process_group, wait_until_serving
from nextframe.ops.registry import PREDICTOR_ARTIFACT, SERVED_MODEL_CODE, request_example
from nextframe.params import load_params

REPO_ROOT = Path(__file__).resolve().parents[1]
EAGER_MODEL_CODE = str(Path(__file__).with_name("served_eager.py"))
HORIZON = 10


def save_models(out: Path) -> tuple[Path, Path, FrameFormat]:
    """The default architecture saved as the lean pyfunc and as the old eager one."""
    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types import ParamSchema, ParamSpec, Schema, TensorSpec

    params = load_params(REPO_ROOT / "params.yaml")
    frames = FrameFormat.of(params.data)
    model = build_model(params.model, HORIZON, frames)
    save_predictor(model, out / "model.keras")
    artifacts = {PREDICTOR_ARTIFACT: str(out / "model.keras")}
    lean, eager = out / "lean", out / "eager"
    mlflow.pyfunc.save_model(
        lean,
        python_model=SERVED_MODEL_CODE,
        artifacts=artifacts,
        input_example=request_example(frames, HORIZON),
    )
    tensor = TensorSpec(np.dtype("float32"), (-1, -1, *frames.shape), "context")
    mlflow.pyfunc.save_model(
        eager,
        python_model=EAGER_MODEL_CODE,
        artifacts=artifacts,
        signature=ModelSignature(
            inputs=Schema([tensor]),
            outputs=Schema([TensorSpec(np.dtype("float32"), (-1, -1, *frames.shape), "future")]),
            params=ParamSchema([ParamSpec("horizon", "long", HORIZON)]),
        ),
    )
    return lean, eager, frames


def post(port: int, body: bytes) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def timed(port: int, body: bytes, n: int) -> list[float]:
    """Seconds per request, `n` one after another (after two unmeasured)."""
    for _ in range(2):
        status, answer = post(port, body)
        assert status == 200, answer[:300]
    seconds = []
    for _ in range(n):
        started = time.perf_counter()
        status, answer = post(port, body)
        seconds.append(time.perf_counter() - started)
        assert status == 200, answer[:300]
    return seconds


def concurrent(port: int, good: bytes, bad: bytes, clients: int, per_client: int) -> dict:
    """`clients` threads, each sending `per_client` requests (every fifth malformed)."""
    statuses: list[tuple[bool, int]] = []
    lock = threading.Lock()

    def client() -> None:
        for i in range(per_client):
            malformed = i % 5 == 4
            status, _ = post(port, bad if malformed else good)
            with lock:
                statuses.append((malformed, status))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    return {
        "requests_per_second": len(statuses) / seconds,
        "valid_200": sum(1 for m, s in statuses if not m and s == 200),
        "valid": sum(1 for m, _ in statuses if not m),
        "malformed_400": sum(1 for m, s in statuses if m and s == 400),
        "malformed": sum(1 for m, _ in statuses if m),
    }


def percentiles(seconds: list[float]) -> tuple[float, float]:
    return 1000 * float(np.percentile(seconds, 50)), 1000 * float(np.percentile(seconds, 95))


def serve(model: Path, workers: int, log: Path):
    port = free_port()
    command = (
        f"make -s --no-print-directory serve MODEL={shlex.quote(str(model))} PORT={port} "
        f"WORKERS={workers}"
    )
    handle = log.open("w")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{log.parent}/mlflow.db"}
    group = process_group(
        ["bash", "-c", command], cwd=REPO_ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT
    )
    return port, group


def measure(name: str, model: Path, workers: int, bodies: dict, args, tmp: Path) -> dict:
    log = tmp / f"{name}.log"
    port, group = serve(model, workers, log)
    with group as process:
        wait_until_serving(f"http://127.0.0.1:{port}/ping", process, 300, f"in {log}")
        one = timed(port, bodies["one"], args.requests)
        eight = timed(port, bodies["eight"], max(3, args.requests // 5))
        lists = (
            timed(port, bodies["lists"], max(3, args.requests // 3)) if "lists" in bodies else None
        )
        load = concurrent(port, bodies["one"], bodies["bad"], 4, args.per_client)
        load["still_answering"] = answers(f"http://127.0.0.1:{port}/ping")
    result = {
        "workers": workers,
        "one_clip_p50_ms": percentiles(one)[0],
        "one_clip_p95_ms": percentiles(one)[1],
        "eight_clips_p50_ms": percentiles(eight)[0],
        **load,
    }
    if lists is not None:
        result["one_clip_float_lists_p50_ms"] = percentiles(lists)[0]
    shown = {k: round(v, 1) if isinstance(v, float) else v for k, v in result.items()}
    print(f"{name}: {json.dumps(shown)}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30, help="1-clip requests timed per server")
    parser.add_argument("--per-client", type=int, default=15, help="requests per concurrent client")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="lean server's")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="nextframe-serve-bench-") as tmp_name:
        tmp = Path(tmp_name)
        lean, eager, frames = save_models(tmp)
        clips = rng.random((8, 10, *frames.shape), dtype=np.float32)
        params = {"params": {"horizon": HORIZON}}

        def body(inputs) -> bytes:
            return json.dumps({"inputs": inputs, **params}).encode()

        bad_shape = np.zeros((10, frames.size // 2, frames.size // 2, frames.channels), np.float32)
        lean_bodies = {
            "one": body([encode_npy(clips[0])]),
            "eight": body([encode_npy(c) for c in clips]),
            "lists": body(clips[:1].tolist()),
            "bad": body([encode_npy(bad_shape)]),
        }
        eager_bodies = {
            "one": body(clips[:1].tolist()),
            "eight": body(clips.tolist()),
            "bad": body(bad_shape[None].tolist()),
        }
        # the same frames back from both servers
        lean_port, lean_group = serve(lean, 1, tmp / "check-lean.log")
        with lean_group as process:
            wait_until_serving(f"http://127.0.0.1:{lean_port}/ping", process, 300)
            lean_answer = decode_npy(
                json.loads(post(lean_port, lean_bodies["one"])[1])["predictions"][0]
            )
        eager_result = measure("eager (as it was)", eager, 1, eager_bodies, args, tmp)
        lean_result = measure("compiled, lean", lean, args.workers, lean_bodies, args, tmp)

    print(f"lean answer {lean_answer.shape} {lean_answer.dtype}")
    print(
        f"1 clip x 10 frames p50: {eager_result['one_clip_p50_ms']:.0f} ms -> "
        f"{lean_result['one_clip_p50_ms']:.0f} ms (p95 {lean_result['one_clip_p95_ms']:.0f} ms); "
        f"8 clips: {eager_result['eight_clips_p50_ms']:.0f} -> "
        f"{lean_result['eight_clips_p50_ms']:.0f} ms; 4 clients: "
        f"{eager_result['requests_per_second']:.1f} -> {lean_result['requests_per_second']:.1f} "
        "requests/s"
    )
    print(f"ratio {eager_result['one_clip_p50_ms'] / lean_result['one_clip_p50_ms']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
