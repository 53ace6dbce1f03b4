"""Download and conversion of the real Moving MNIST file, against a local HTTP server."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from nextframe.data.download import convert_real_layout, download, md5sum
from nextframe.errors import NextframeError

FAST = {"retries": 3, "backoff_seconds": 0.01, "timeout": 5.0, "progress": False}


class FileServer(ThreadingHTTPServer):
    """Serves one body at every path; each test flips the knobs it needs."""

    daemon_threads = True

    def __init__(self, body: bytes) -> None:
        super().__init__(("127.0.0.1", 0), RangeHandler)
        self.body = body
        self.honor_range = True
        self.cut_first_after_bytes: int | None = None
        self.fail_statuses: list[int] = []  # popped one per request before serving
        self.range_headers: list[str | None] = []  # one entry per request received

    def url(self, name: str = "mnist_test_seq.npy") -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/{name}"


class RangeHandler(BaseHTTPRequestHandler):
    server: FileServer

    def do_GET(self) -> None:
        server = self.server
        range_header = self.headers.get("Range")
        server.range_headers.append(range_header)
        is_first_request = len(server.range_headers) == 1
        if server.fail_statuses:
            self.send_error(server.fail_statuses.pop(0))
            return

        body = server.body
        if range_header and server.honor_range:
            start = int(range_header.removeprefix("bytes=").removesuffix("-"))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            payload = body[start:]
        else:
            self.send_response(200)
            payload = body
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()

        if is_first_request and server.cut_first_after_bytes is not None:
            # Promise the whole body, deliver part of it, hang up: an interrupted transfer.
            self.wfile.write(payload[: server.cut_first_after_bytes])
            self.close_connection = True
            return
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture
def source_frames() -> np.ndarray:
    """A tiny stand-in for the real file: (20 frames, 12 sequences, 64, 64) uint8, time-major."""
    return np.random.default_rng(0).integers(0, 256, size=(20, 12, 64, 64), dtype=np.uint8)


@pytest.fixture
def source_file(tmp_path: Path, source_frames: np.ndarray) -> Path:
    path = tmp_path / "served" / "mnist_test_seq.npy"
    path.parent.mkdir()
    np.save(path, source_frames, allow_pickle=False)
    return path


@pytest.fixture
def source_md5(source_file: Path) -> str:
    return hashlib.md5(source_file.read_bytes()).hexdigest()


@pytest.fixture
def server(source_file: Path) -> Iterator[FileServer]:
    file_server = FileServer(source_file.read_bytes())
    thread = threading.Thread(target=file_server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield file_server
    file_server.shutdown()
    file_server.server_close()


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "raw" / "mnist_test_seq.npy"


def part_of(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def test_full_download_matches_md5(
    server: FileServer, source_file: Path, source_md5: str, dest: Path
) -> None:
    result = download(server.url(), dest, md5=source_md5, **{**FAST, "progress": True})

    assert result == dest
    assert dest.read_bytes() == source_file.read_bytes()
    assert md5sum(dest) == source_md5
    assert not part_of(dest).exists()
    assert server.range_headers == [None]


def test_interrupted_transfer_resumes_with_range(
    server: FileServer, source_file: Path, source_md5: str, dest: Path
) -> None:
    server.cut_first_after_bytes = 100_000

    download(server.url(), dest, md5=source_md5, **FAST)

    assert server.range_headers == [None, "bytes=100000-"]
    assert dest.read_bytes() == source_file.read_bytes()
    assert not part_of(dest).exists()


def test_server_ignoring_range_restarts_from_zero(
    server: FileServer, source_file: Path, source_md5: str, dest: Path
) -> None:
    server.honor_range = False
    server.cut_first_after_bytes = 100_000

    download(server.url(), dest, md5=source_md5, **FAST)

    assert server.range_headers == [None, "bytes=100000-"]
    assert dest.read_bytes() == source_file.read_bytes()


def test_complete_part_file_answered_416_is_accepted(
    server: FileServer, source_file: Path, source_md5: str, dest: Path
) -> None:
    dest.parent.mkdir()
    part_of(dest).write_bytes(source_file.read_bytes())

    download(server.url(), dest, md5=source_md5, **FAST)

    assert server.range_headers == [f"bytes={source_file.stat().st_size}-"]
    assert dest.read_bytes() == source_file.read_bytes()


def test_server_error_is_retried(
    server: FileServer, source_file: Path, source_md5: str, dest: Path
) -> None:
    server.fail_statuses = [503, 503]

    download(server.url(), dest, md5=source_md5, **FAST)

    assert len(server.range_headers) == 3
    assert dest.read_bytes() == source_file.read_bytes()


def test_wrong_md5_leaves_no_file(server: FileServer, dest: Path) -> None:
    wrong_md5 = "0" * 32

    with pytest.raises(NextframeError, match=r"md5 mismatch, expected 0{32}, got [0-9a-f]{32}"):
        download(server.url(), dest, md5=wrong_md5, **FAST)

    assert not dest.exists()
    assert not part_of(dest).exists()


def test_404_is_not_retried(server: FileServer, source_md5: str, dest: Path) -> None:
    server.fail_statuses = [404]
    url = server.url("missing.npy")

    with pytest.raises(NextframeError, match="404") as excinfo:
        download(url, dest, md5=source_md5, **FAST)

    assert str(excinfo.value) == f"{url}: HTTP 404 Not Found (check data.url)"
    assert len(server.range_headers) == 1
    assert not dest.exists()


def test_closed_port_fails_with_one_line(source_md5: str, dest: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/mnist_test_seq.npy"

    with pytest.raises(NextframeError) as excinfo:
        download(url, dest, md5=source_md5, **FAST)

    message = str(excinfo.value)
    assert url in message
    assert "connection refused" in message
    assert "\n" not in message
    assert not dest.exists()


def test_present_file_with_right_md5_makes_no_request(
    server: FileServer, source_file: Path, source_md5: str, dest: Path
) -> None:
    dest.parent.mkdir()
    dest.write_bytes(source_file.read_bytes())

    download(server.url(), dest, md5=source_md5, **FAST)

    assert server.range_headers == []


def test_file_url_works(source_file: Path, source_md5: str, dest: Path) -> None:
    download(source_file.as_uri(), dest, md5=source_md5, **FAST)

    assert dest.read_bytes() == source_file.read_bytes()


def test_convert_real_layout_is_sequence_major(
    source_file: Path, source_frames: np.ndarray, tmp_path: Path
) -> None:
    out_path = tmp_path / "converted.npy"

    shape = convert_real_layout(source_file, out_path, n_frames=10)

    converted = np.load(out_path, allow_pickle=False)
    assert shape == (12, 10, 64, 64, 1)
    assert converted.dtype == np.uint8
    np.testing.assert_array_equal(converted[..., 0], source_frames[:10].swapaxes(0, 1))


def truncated_npy(path: Path) -> None:
    np.save(path, np.zeros((20, 3, 64, 64), dtype=np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("write_bad_file", "expected_fragment"),
    [
        (lambda path: np.save(path, np.zeros((20, 3, 64, 64), np.float32)), "found float32"),
        (lambda path: np.save(path, np.zeros((20, 64, 64), np.uint8)), "shape (20, 64, 64)"),
        (truncated_npy, "unreadable"),
        (
            lambda path: np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True),
            "unreadable",
        ),
    ],
    ids=["float32", "3d", "truncated", "pickled"],
)
def test_convert_real_layout_refuses_bad_files(
    tmp_path: Path, write_bad_file, expected_fragment: str
) -> None:
    src = tmp_path / "bad.npy"
    write_bad_file(src)
    out_path = tmp_path / "converted.npy"

    with pytest.raises(NextframeError) as excinfo:
        convert_real_layout(src, out_path, n_frames=10)

    message = str(excinfo.value)
    assert message.startswith(f"{src}: expected a uint8 .npy")
    assert expected_fragment in message
    assert "\n" not in message
    assert not out_path.exists()
    assert list(tmp_path.iterdir()) == [src]
