"""Fixtures: the repo's own params.yaml as a dict, and the tiny variant for fast runs."""

from __future__ import annotations

import pytest

from . import helpers

REPO_ROOT = helpers.REPO_ROOT


@pytest.fixture
def default_params() -> dict:
    return helpers.default_params()


@pytest.fixture
def tiny_params() -> dict:
    return helpers.tiny_params()
