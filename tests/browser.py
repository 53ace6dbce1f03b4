"""Headless Debian chromium for page tests, a sink for calls that would leave the machine, and
servers run in their own process group.

Playwright drives /usr/bin/chromium (Debian's package; `.ci/run` installs it), never a
browser of its own download. A page may load from this machine only: http(s) on 127.0.0.1 or
localhost, or file:, data: and blob: URLs; other requests are aborted and listed in
`BrowserSession.off_host`. Chromium also calls Google by itself whatever the page (update
checks, sign-in, autofill): its proxy is an `OffHostSink`, which refuses all that, so nothing
leaves the machine. A server under test can get a sink of its own through `proxy_env`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import ConsoleMessage, Page, Request, Route, sync_playwright

from nextframe.errors import NextframeError
from nextframe.ops import processes
from nextframe.ops.processes import free_port as free_port  # what the server tests bind

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_SCHEMES = {"file", "data", "blob"}
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def is_local(url: str) -> bool:
    """Whether loading `url` stays on this machine."""
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return True
    return parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname in LOCAL_HOSTS


class OffHostSink:
    """An HTTP proxy on 127.0.0.1 that forwards nothing: it records the first line of each
    request (`CONNECT host:443 HTTP/1.1`, `GET http://host/ HTTP/1.1`) and answers 403."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:  # closed
                return
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    first_line = conn.recv(4096).split(b"\r\n", 1)[0]
                    self.seen.append(first_line.decode("latin-1"))
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    def close(self) -> None:
        self._server.shutdown(socket.SHUT_RDWR)  # wakes the accept() in _serve
        self._server.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OffHostSink:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def proxy_env(sink: OffHostSink) -> dict[str, str]:
    """Environment variables that send a process's off-host HTTP(S) calls to `sink`."""
    names = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
    env = {name: sink.url for name in names} | {name.lower(): sink.url for name in names}
    return env | {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


@dataclass
class BrowserSession:
    """One page in a fresh profile, with what it requested and what went wrong in it."""

    page: Page
    requests: list[str] = field(default_factory=list)  # every URL requested, in order
    off_host: list[str] = field(default_factory=list)  # aborted: would have left the machine
    errors: list[str] = field(default_factory=list)  # uncaught exceptions, console errors
    warnings: list[str] = field(default_factory=list)  # console warnings

    def _route(self, route: Route) -> None:
        if is_local(route.request.url):
            route.fallback()
        else:
            self.off_host.append(route.request.url)
            route.abort("blockedbyclient")

    def _record(self, request: Request) -> None:
        self.requests.append(request.url)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")
        elif message.type == "warning":
            self.warnings.append(message.text)


@contextlib.contextmanager
def chromium_session() -> Iterator[BrowserSession]:
    """Launch chromium in a temporary profile; skip (fail on CI) when it is not installed."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found: `apt-get install chromium` to run the browser tests"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (.ci/run installs it)")
        pytest.skip(message)
    with (
        OffHostSink() as sink,
        tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile,
        sync_playwright() as playwright,
    ):
        # Loopback addresses go direct (Chromium never proxies them), all else to the sink.
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=[*CHROMIUM_ARGS, f"--proxy-server={sink.url}"],
            headless=True,
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            session = BrowserSession(page)
            context.on("request", session._record)
            context.route("**/*", session._route)
            page.on("pageerror", lambda exc: session.errors.append(f"uncaught: {exc}"))
            page.on("console", session._console)
            yield session
        finally:
            context.close()


@contextlib.contextmanager
def process_group(args: list[str], log: Path, **popen_kwargs) -> Iterator[subprocess.Popen]:
    """`nextframe.ops.processes.process_group` with the output in `log`: servers such as
    `mlflow ui` fork workers that outlive a SIGTERM to the parent, so the whole group is ended."""
    with (
        log.open("wb") as out,
        processes.process_group(
            args, stdout=out, stderr=subprocess.STDOUT, **popen_kwargs
        ) as process,
    ):
        yield process


def wait_until_serving(url: str, server: subprocess.Popen, log: Path, seconds: float = 180) -> None:
    """Until GET `url` answers 200 (straight to the host, no proxy), or fail with the log's
    tail if `server` exits or `seconds` pass."""
    try:
        processes.wait_until_serving(url, server, seconds, f"in {log}")
    except NextframeError as exc:
        pytest.fail(f"{exc}:\n{log.read_text()[-3000:]}")
