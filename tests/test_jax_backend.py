"""The model and frame tests again, on JAX (a GPU's backend): model and training code use
Keras 3 APIs only, so the code that trains here on TensorFlow also trains on JAX.

A subprocess, because Keras picks its backend once per process; as a test (not a second
pytest run in the Makefile) it runs beside the others under `make test`'s workers."""

from __future__ import annotations

import subprocess
import sys

import keras
import pytest

from .helpers import REPO_ROOT, clean_env

pytestmark = pytest.mark.integration

# Run on TensorFlow only: variants that take other values through the same Keras calls (one
# normalisation, group, the radar preset's, one kind of sequences and one frame of the
# causality check stand for the rest), and tests of what no backend changes (channels, the
# saved bytes, the rollout's Python loop against a rerun, a plain `fit`).
ON_TENSORFLOW_ONLY = (
    "not (every_normalization and not group) and not (closed_loop_training and fresh)"
    " and not later_frame[1] and not later_frame[5] and not colour_models"
    " and not same_weights_save and not stateful_rollout_equals and not a_few_training_steps"
)


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="this whole run is on JAX")
def test_model_and_frame_tests_pass_on_jax():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:xdist",
            "-p",
            "no:cacheprovider",
            "tests/test_model.py",
            "tests/test_frames.py",
            "-k",
            ON_TENSORFLOW_ONLY,
        ],
        cwd=REPO_ROOT,
        env=clean_env(KERAS_BACKEND="jax", PYTEST_ADDOPTS=""),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout.splitlines()[-1]
