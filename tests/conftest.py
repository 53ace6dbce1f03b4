"""Shared fixtures: the repo's own params.yaml as a dict, a tiny variant for fast runs, and a
headless browser page that may load nothing from off this machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from nextframe.presets import merged as merge

from .browser import BrowserSession, chromium_session

REPO_ROOT = Path(__file__).resolve().parents[1]


def tiny_overrides() -> dict:
    """Params small enough that the whole pipeline runs in about a minute on 2 cores.

    Short sequences (4 in, 4 out) also keep TensorFlow's tracing of the unrolled closed loop,
    most of a tiny run's time, short."""
    return {
        "epochs": 1,
        "data": {"n_train": 16, "n_val": 8, "n_test": 8, "n_frames": 8, "n_context": 4},
        "model": {"filters": [4, 4], "kernel_sizes": [3, 3]},
        "train": {"batch_size": 8, "context_frames": 4},
        "render": {"n_sequences": 2, "scale": 2},
    }


@pytest.fixture
def default_params() -> dict:
    return yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


@pytest.fixture
def tiny_params(default_params) -> dict:
    return merge(default_params, tiny_overrides())


@pytest.fixture
def browser() -> Iterator[BrowserSession]:
    """A page in headless chromium: `.requests` lists what it loaded, `.off_host` what was
    blocked because it would have left this machine, `.errors` its script errors."""
    with chromium_session() as session:
        yield session
