"""Servers as child processes: free loopback ports, process groups that end whole, and waiting
until a server answers. Used by `make server`, the tests and the benchmarks."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

from nextframe.errors import NextframeError


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        # as uvicorn binds: a port whose old connections linger in TIME_WAIT is free
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def process_group(
    args: list[str], stop_signal: int = signal.SIGTERM, **popen_kwargs
) -> Iterator[subprocess.Popen]:
    """A process in its own process group; on exit the whole group is ended.

    `mlflow server`, `mlflow ui` and `mlflow models serve` fork uvicorn workers that a
    signal to the parent alone would leave running."""
    process = subprocess.Popen(args, start_new_session=True, **popen_kwargs)
    try:
        yield process
    finally:
        end_group(process, stop_signal)


def end_group(process: subprocess.Popen, stop_signal: int = signal.SIGTERM) -> None:
    """`stop_signal` to the process group, SIGKILL after 20 s; returns once it is gone."""
    for sig, seconds in ((stop_signal, 20), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(seconds)
        if process.poll() is not None and not group_alive(process.pid):
            return


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def answers(url: str, timeout: float = 2) -> bool:
    """Whether GET `url` answers 200, asked straight (no proxy)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("GET", parts.path or "/")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def wait_until_serving(
    url: str, process: subprocess.Popen, seconds: float, where_output: str = "above"
) -> None:
    """Until GET `url` answers 200; a NextframeError if `process` exits or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NextframeError(
                f"{os.path.basename(str(process.args[0]))} exited with code "
                f"{process.returncode}: see its output {where_output}"
            )
        if answers(url):
            return
        time.sleep(0.5)
    raise NextframeError(f"{url} did not answer within {seconds:g} s")
