import json

from nextframe.resume import Backup, training_fingerprint

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
    assert opened.resume_run_id is None and opened.abandoned_run_id is None
    backup.record_run("abc")
    opened = Backup(tmp_path / "backup").open(fingerprint)
    assert opened.resume_run_id == "abc" and opened.abandoned_run_id is None


def test_backup_from_other_params_is_discarded_and_its_run_named(tmp_path):
    backup = Backup(tmp_path / "backup")
    backup.open(training_fingerprint(FLAT, MANIFEST))
    backup.record_run("abc")
    (backup.directory / "keras").mkdir()
    other = training_fingerprint({**FLAT, "epochs": "4"}, MANIFEST)
    opened = Backup(tmp_path / "backup").open(other)
    assert opened.resume_run_id is None
    assert opened.abandoned_run_id == "abc"  # to be ended FAILED: nothing will resume it
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
