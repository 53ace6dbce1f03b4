import math

import pytest

from nextframe.errors import NextframeError
from nextframe.ops.registry import pinned_requirements
from nextframe.train import check_finite, history_rows


def test_non_finite_loss_is_an_error_naming_the_first_bad_epoch():
    check_finite({"loss": [1.0, 0.5], "val_loss": [1.0, 0.6]})
    with pytest.raises(NextframeError, match="val_loss became nan at epoch 1"):
        check_finite({"loss": [1.0, math.nan], "val_loss": [math.nan, math.nan]})


def test_history_rows_for_dvc_plots():
    rows = history_rows({"loss": [2.0, 1.0], "val_loss": [3.0, 2.0], "lr": [0.1, 0.0], "x": [1, 1]})
    assert rows == [
        {"epoch": 1, "loss": 2.0, "val_loss": 3.0, "lr": 0.1},
        {"epoch": 2, "loss": 1.0, "val_loss": 2.0, "lr": 0.0},
    ]


def test_model_requirements_pin_keras_and_the_running_backend():
    import keras

    pins = dict(pin.split("==") for pin in pinned_requirements())
    assert pins["keras"] == keras.__version__
    backend_package = {"tensorflow": "tensorflow-cpu", "jax": "jax"}[keras.backend.backend()]
    assert backend_package in pins
