"""Headless Debian chromium for page tests, and a sink for anything that tries to go off-host.

Playwright drives /usr/bin/chromium (Debian's package; `.ci/run` installs it), never a
browser of its own download. A page may load from this machine only: http(s) on 127.0.0.1 or
localhost, or file:, data: and blob: URLs. Other requests are aborted and listed. Chromium's
proxy is an `OffHostSink`, so what Playwright does not see as a page request (a shared
worker's fetch, a preconnect, the browser's own traffic) is refused and listed too; a server
under test can be pointed at the same sink through `proxy_env`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Request, Route, sync_playwright

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
# Chromium's own background calls, whatever the page (update check, sign-in, clock): the sink
# refuses them too, but they are not the page's doing, so `off_host` leaves them out.
BROWSER_OWN_HOSTS = {"update.googleapis.com", "accounts.google.com", "clients2.google.com"}


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


def requested_host(request_line: str) -> str:
    """The host a proxy request line asks for: `CONNECT host:443 ...` or `GET http://host/ ...`."""
    target = request_line.split(" ")[1] if " " in request_line else request_line
    return urlsplit(target if "://" in target else f"//{target}").hostname or target


def proxy_env(sink: OffHostSink) -> dict[str, str]:
    """Environment variables that send a process's off-host HTTP(S) to `sink`."""
    names = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
    env = {name: sink.url for name in names} | {name.lower(): sink.url for name in names}
    return env | {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


@dataclass
class BrowserSession:
    """One page in a fresh profile, with what it requested and what went wrong in it."""

    page: Page
    sink: OffHostSink
    requests: list[str] = field(default_factory=list)  # every URL the page requested, in order
    blocked: list[str] = field(default_factory=list)  # page requests aborted: not local
    errors: list[str] = field(default_factory=list)  # uncaught exceptions, console errors
    warnings: list[str] = field(default_factory=list)  # console warnings

    @property
    def off_host(self) -> list[str]:
        """Everything that tried to leave this machine: aborted page requests, then what the
        sink refused (from the browser, or from a server given `proxy_env(sink)`)."""
        from_sink = [
            line for line in self.sink.seen if requested_host(line) not in BROWSER_OWN_HOSTS
        ]
        return self.blocked + from_sink

    def _route(self, route: Route) -> None:
        if is_local(route.request.url):
            route.fallback()
        else:
            self.blocked.append(route.request.url)
            route.abort("blockedbyclient")

    def _record(self, request: Request) -> None:
        self.requests.append(request.url)

    def _console(self, message) -> None:
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
    sink = OffHostSink()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile,
            sync_playwright() as playwright,
        ):
            # Chromium sends loopback addresses direct, everything else to the sink.
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                args=[*CHROMIUM_ARGS, f"--proxy-server={sink.url}"],
                headless=True,
            )
            try:
                page = context.pages[0] if context.pages else context.new_page()
                session = BrowserSession(page, sink)
                context.on("request", session._record)
                context.route("**/*", session._route)
                page.on("pageerror", lambda exc: session.errors.append(f"uncaught: {exc}"))
                page.on("console", session._console)
                yield session
            finally:
                context.close()
    finally:
        sink.close()
