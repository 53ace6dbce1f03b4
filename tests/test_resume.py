import json

import pytest

from nextframe.errors import NextframeError
from nextframe.resume import Backup, FollowerBackup, training_fingerprint

MANIFEST = {
    "splits": {"train": {"sha256": "aa"}, "val": {"sha256": "bb"}},
    "train_digits": {"sha256": "cc"},
}
FLAT = {"seed": "42", "epochs": "3", "model.filters": "[8]", "render.fps": "4.0"}


def test_fingerprint_covers_what_training_reads_only():
    fingerprint = training_fingerprint(FLAT, MANIFEST)
    assert fingerprint["params"] == {"epochs": "3", "model.filters": "[8]", "seed": "42"}
    assert fingerprint["data"] == {"train": "aa", "val": "bb", "train_digits": "cc"}


def test_backup_of_the_same_training_is_resumed_in_its_run(tmp_path):
    backup = Backup(tmp_path / "backup")
    fingerprint = training_fingerprint(FLAT, MANIFEST)
    opened = backup.open(fingerprint)  # a new backup, stamped
    assert opened.resume_run_id is None and opened.abandoned is None
    backup.record_run("abc")
    opened = Backup(tmp_path / "backup").open(fingerprint)
    assert opened.resume_run_id == "abc" and opened.abandoned is None


def test_backup_from_other_params_is_discarded_and_its_run_named(tmp_path):
    backup = Backup(tmp_path / "backup")
    backup.open(training_fingerprint(FLAT, MANIFEST))
    backup.record_run("abc")
    (backup.directory / "keras").mkdir()
    other = training_fingerprint({**FLAT, "epochs": "4"}, MANIFEST)
    opened = Backup(tmp_path / "backup").open(other)
    assert opened.resume_run_id is None
    assert opened.abandoned == ("abc", "params or data changed")  # to be ended FAILED
    assert not (backup.directory / "keras").exists()
    assert json.loads((backup.directory / "fingerprint.json").read_text()) == other


def test_unreadable_stamp_counts_as_other_training(tmp_path):
    backup = Backup(tmp_path / "backup")
    backup.directory.mkdir()
    (backup.directory / "fingerprint.json").write_text("{not json")
    assert backup.open(training_fingerprint(FLAT, MANIFEST)).resume_run_id is None


def test_discard_removes_the_backup(tmp_path):
    backup = Backup(tmp_path / "backup")
    backup.open(training_fingerprint(FLAT, MANIFEST))
    backup.discard()
    assert not backup.directory.exists()
    backup.discard()  # nothing left: no error


class _Batches:
    first_batch = 0


def _fitted_model(steps: int):
    import keras
    import numpy as np

    keras.utils.set_random_seed(steps)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(steps).random((4 * steps, 3), dtype=np.float32)
    model.fit(x, x[:, :2], batch_size=4, verbose=0)
    return model


def test_a_committed_epoch_restores_weights_optimizer_and_data_position(tmp_path):
    import numpy as np

    backup = Backup(tmp_path / "backup")
    backup.open(training_fingerprint(FLAT, MANIFEST))
    trained = _fitted_model(steps=3)
    backup.commit(trained, epochs=2)
    fresh, batches = _fitted_model(steps=1), _Batches()
    assert backup.restore(fresh, batches) == 2
    for a, b in zip(trained.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(fresh.optimizer.iterations) == 3 and batches.first_batch == 3


def test_a_kill_before_the_commit_leaves_the_previous_epoch(tmp_path):
    """Weights of epoch 3 written, `checkpoint.json` not yet renamed: epoch 2 is restored."""
    backup = Backup(tmp_path / "backup")
    fingerprint = training_fingerprint(FLAT, MANIFEST)
    backup.open(fingerprint)
    backup.commit(_fitted_model(steps=2), epochs=2)
    (backup.directory / "epoch-3.weights.h5").write_bytes(b"half-written")
    assert Backup(backup.directory).open(fingerprint).abandoned is None
    assert Backup(backup.directory).restore(_fitted_model(steps=1), _Batches()) == 2


def test_a_backup_whose_weights_are_gone_is_started_over(tmp_path):
    backup = Backup(tmp_path / "backup")
    fingerprint = training_fingerprint(FLAT, MANIFEST)
    backup.open(fingerprint)
    backup.record_run("abc")
    backup.commit(_fitted_model(steps=1), epochs=1)
    (backup.directory / "epoch-1.weights.h5").unlink()
    opened = Backup(backup.directory).open(fingerprint)
    assert opened.abandoned == ("abc", "the weights of epoch 1 are missing")
    assert Backup(backup.directory).saved_epochs() == 0


def _chief_at_epoch_2(directory):
    chief = Backup(directory)
    chief.open(training_fingerprint(FLAT, MANIFEST))
    trained = _fitted_model(steps=3)
    chief.commit(trained, epochs=2)
    return chief, trained


def test_a_follower_that_cannot_see_the_chiefs_backup_stops_with_one_line(tmp_path):
    """No shared storage: the chief resumes at epoch 2, the follower's folder holds nothing."""
    chief, _ = _chief_at_epoch_2(tmp_path / "chief")
    fingerprint = training_fingerprint(FLAT, MANIFEST)
    follower = FollowerBackup(tmp_path / "follower", process=1)
    follower.open(fingerprint)
    with pytest.raises(NextframeError) as error:
        follower.follow(fingerprint, chief.state())
    assert str(error.value).startswith(
        f"follower 1: the chief's backup at {chief.state().path} is not visible here "
        "(epoch 2 there, none here): "
    )
    assert "shared by every process" in str(error.value) and "\n" not in str(error.value)


def test_a_follower_on_shared_storage_resumes_at_the_chiefs_epoch(tmp_path):
    import numpy as np

    chief, trained = _chief_at_epoch_2(tmp_path / "backup")
    fingerprint = training_fingerprint(FLAT, MANIFEST)
    follower = FollowerBackup(tmp_path / "backup", process=1)
    follower.open(fingerprint)
    follower.follow(fingerprint, chief.state())
    fresh = _fitted_model(steps=1)
    assert follower.restore(fresh, _Batches()) == 2
    for a, b in zip(trained.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_follower_starts_over_with_the_chief_whatever_its_own_folder_holds(tmp_path):
    """The chief starts at epoch 0; a follower's stale folder of an earlier run is not read."""
    _chief_at_epoch_2(tmp_path / "follower")  # an earlier run's backup, on the follower's host
    chief = Backup(tmp_path / "chief")
    fingerprint = training_fingerprint(FLAT, MANIFEST)
    chief.open(fingerprint)
    follower = FollowerBackup(tmp_path / "follower", process=1)
    follower.open(fingerprint)
    follower.follow(fingerprint, chief.state())
    assert follower.restore(_fitted_model(steps=1), _Batches()) == 0


def test_a_follower_of_other_params_stops_with_one_line(tmp_path):
    chief, _ = _chief_at_epoch_2(tmp_path / "backup")
    other = training_fingerprint({**FLAT, "epochs": "4"}, MANIFEST)
    follower = FollowerBackup(tmp_path / "backup", process=2)
    with pytest.raises(NextframeError, match="follower 2: params or data differ from the chief"):
        follower.follow(other, chief.state())
