"""Fixtures: the repo's own params.yaml as a dict, the tiny variant for fast runs, and a
headless browser page that may load nothing from off this machine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import helpers
from .browser import BrowserSession, chromium_session

REPO_ROOT = helpers.REPO_ROOT


@pytest.fixture
def default_params() -> dict:
    return helpers.default_params()


@pytest.fixture
def tiny_params() -> dict:
    return helpers.tiny_params()


@pytest.fixture
def browser() -> Iterator[BrowserSession]:
    """A page in headless chromium: `.requests` lists what it loaded, `.off_host` what was
    blocked because it would have left this machine, `.errors` its script errors."""
    with chromium_session() as session:
        yield session
