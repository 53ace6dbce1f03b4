import math

import numpy as np
import pytest

from nextframe.cluster import Cluster, EpochSplit, split_epoch
from nextframe.errors import NextframeError
from nextframe.ops.registry import pinned_requirements
from nextframe.params import parse_params
from nextframe.train import check_finite, history_rows, training_batches

from .helpers import tiny_params


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


def test_the_gpu_presets_last_validation_batch_is_cut_to_split_over_8_devices():
    """n_val 500 in batches of 64: the last batch of 52 does not split over 8 devices; 48 do."""
    split = split_epoch(500, 64, processes=1, local_devices=8, rows_param="data.n_val")
    assert split == EpochSplit(
        rows=496, dropped=4, batches=8, process_rows=64, last_process_rows=48
    )


@pytest.mark.parametrize(
    ("rows", "batch_size", "processes", "local_devices"),
    [(500, 64, 2, 4), (501, 64, 2, 1), (70, 64, 1, 8), (64, 64, 8, 8), (9, 4, 1, 2), (7, 4, 1, 1)],
)
def test_every_batch_splits_over_every_process_and_device(
    rows, batch_size, processes, local_devices
):
    split = split_epoch(rows, batch_size, processes, local_devices, "data.n_val")
    shares = [split.process_rows] * (split.batches - 1) + [split.last_process_rows]
    assert all(share > 0 and share % local_devices == 0 for share in shares)
    assert sum(shares) * processes == split.rows == rows - split.dropped
    assert split.dropped < processes * local_devices  # only what cannot split is left out


@pytest.mark.parametrize(
    ("processes", "local_devices", "where"),
    [(1, 8, "8 visible"), (2, 4, "8 devices of 2 processes")],
)
def test_fewer_clips_than_devices_is_one_line_naming_the_param(processes, local_devices, where):
    with pytest.raises(NextframeError, match=rf"data\.n_val must be at least the {where}.*got 6"):
        split_epoch(6, 64, processes, local_devices, "data.n_val")


def test_a_batch_size_that_does_not_split_is_one_line():
    with pytest.raises(NextframeError, match=r"train\.batch_size must be a multiple of the 8"):
        split_epoch(500, 60, 1, 8, "data.n_val")


def test_training_batches_of_a_cluster_split_over_its_devices():
    """9 validation clips in batches of 4 over 2 processes: the last clip cannot be shared."""
    params = parse_params(tiny_params({"train": {"batch_size": 4}}))
    windows = np.zeros((9, 8, 64, 64, 1), np.uint8)
    shares = []
    for process in (0, 1):
        train, val = training_batches(params, windows, None, windows, Cluster(process, 2), 1)
        shares.append([len(val[i]) for i in range(val.num_batches)])
        assert val.sequences_per_epoch == train.sequences_per_epoch == 8
    assert shares == [[2, 2], [2, 2]]
