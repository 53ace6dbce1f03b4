import json
import math

import pytest

from nextframe.errors import NextframeError
from nextframe.train import (
    check_finite,
    history_rows,
    open_backup,
    pinned_requirements,
    training_fingerprint,
)

MANIFEST = {"splits": {"train": {"sha256": "aa"}, "val": {"sha256": "bb"}}}
FLAT = {"seed": "42", "epochs": "3", "model.filters": "[8]", "render.fps": "4.0"}


def test_fingerprint_covers_what_training_reads_only():
    fingerprint = training_fingerprint(FLAT, MANIFEST)
    assert fingerprint["params"] == {"epochs": "3", "model.filters": "[8]", "seed": "42"}
    assert fingerprint["data"] == {"train": "aa", "val": "bb"}


def test_backup_of_the_same_training_is_resumed_in_its_run(tmp_path):
    backup = tmp_path / "backup"
    fingerprint = training_fingerprint(FLAT, MANIFEST)
    assert open_backup(backup, fingerprint) is None  # a new backup, stamped
    (backup / "mlflow_run.json").write_text(json.dumps({"run_id": "abc"}))
    assert open_backup(backup, fingerprint) == "abc"


def test_backup_from_other_params_is_discarded(tmp_path):
    backup = tmp_path / "backup"
    open_backup(backup, training_fingerprint(FLAT, MANIFEST))
    (backup / "mlflow_run.json").write_text(json.dumps({"run_id": "abc"}))
    (backup / "keras").mkdir()
    other = training_fingerprint({**FLAT, "epochs": "4"}, MANIFEST)
    assert open_backup(backup, other) is None
    assert not (backup / "keras").exists()
    assert json.loads((backup / "fingerprint.json").read_text()) == other


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
