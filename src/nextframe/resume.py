"""Resuming an interrupted training run: the backup it left, and a data order that picks up.

The backup directory holds the last finished epoch's weights and optimizer state, every
finished epoch's logs, the MLflow run id, and a fingerprint of the params and data it was made
with. Only a backup of the very same training is resumed.

Keras's `BackupAndRestore` writes the weights and then the epoch counter as two plain file
writes: a kill between them (or during either) leaves weights of one epoch labelled with
another, or a truncated file, and the resumed run diverges or crashes. Here each epoch's
weights go to a new file and one atomic rename of `checkpoint.json` commits them, so a kill
at any instant leaves the previous epoch's state or the new one, never a mix.

In a cluster, followers resume from the chief's backup: they check they see the state the
chief resumes from (`agree_on_backup`), so a backup not on shared storage stops every process
with one line instead of parting their weights.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import socket
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
from keras import ops

from nextframe.cluster import Cluster, first_problem, from_chief
from nextframe.errors import NextframeError
from nextframe.io import atomic_path, write_json

# The params training reads: a backup made with other values of these is not resumed.
TRAINED_ON = ("seed", "epochs", "data.", "model.", "train.")


def training_fingerprint(flat_params: dict[str, str], manifest: dict) -> dict:
    """What a backup must match to be resumed: every param training reads, and the data."""
    return {
        "params": {k: v for k, v in sorted(flat_params.items()) if k.startswith(TRAINED_ON)},
        "data": {
            **{split: info["sha256"] for split, info in sorted(manifest["splits"].items())},
            "train_digits": manifest.get("train_digits", {}).get("sha256"),
        },
    }


def _digest(fingerprint: dict) -> str:
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class BackupState:
    """What one process sees of a backup: where (host:folder), the epochs it holds (weights
    included) and the digest of its fingerprint ("" without one): what followers compare
    with the chief's."""

    path: str
    epochs: int
    fingerprint: str

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> BackupState:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class OpenedBackup:
    """`resume_run_id`: the MLflow run to continue; `abandoned`: the run of a backup that was
    discarded, which nothing will ever finish, and why (run id, reason)."""

    resume_run_id: str | None
    abandoned: tuple[str, str] | None


class Backup:
    """The per-epoch backup in `directory`: opened before training, discarded once the
    outputs are saved (or the state is not worth resuming, such as after divergence)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.history = HistoryFile(self.directory / "history.json")

    @property
    def _stamp(self) -> Path:
        return self.directory / "fingerprint.json"

    @property
    def _run_file(self) -> Path:
        return self.directory / "mlflow_run.json"

    def _recorded_run(self) -> str | None:
        try:
            return json.loads(self._run_file.read_text())["run_id"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _why_stale(self, fingerprint: dict) -> str | None:
        """Why the backup in `directory` must not be resumed, or None if it may be."""
        try:
            same = json.loads(self._stamp.read_text()) == fingerprint
        except (OSError, ValueError):
            same = False
        if not same:
            return "params or data changed"
        epochs = self.saved_epochs()
        if epochs and not (self.directory / _weights_name(epochs)).is_file():
            return f"the weights of epoch {epochs} are missing"
        return None

    def open(self, fingerprint: dict) -> OpenedBackup:
        """Keep the backup only if an interrupted run of this exact training left it."""
        abandoned = None
        if self.directory.exists():
            reason = self._why_stale(fingerprint)
            if reason is not None:
                run_id = self._recorded_run()
                abandoned = (run_id, reason) if run_id else None
                print(f"train: {self.directory} cannot be resumed ({reason}); starting over")
                shutil.rmtree(self.directory)
        if not self.directory.exists():
            write_json(self._stamp, fingerprint)
            return OpenedBackup(None, abandoned)
        run_id = self._recorded_run()
        if run_id is not None:
            print(f"train: resuming the interrupted run {run_id} from {self.directory}")
        return OpenedBackup(run_id, None)

    def record_run(self, run_id: str) -> None:
        write_json(self._run_file, {"run_id": run_id})

    def state(self) -> BackupState:
        """What this process sees in `directory` now."""
        try:
            fingerprint = _digest(json.loads(self._stamp.read_text()))
        except (OSError, ValueError):
            fingerprint = ""
        epochs = self.saved_epochs()
        if epochs and not (self.directory / _weights_name(epochs)).is_file():
            epochs = 0
        return BackupState(
            f"{socket.gethostname()}:{self.directory.resolve()}", epochs, fingerprint
        )

    @property
    def _checkpoint(self) -> Path:
        return self.directory / "checkpoint.json"

    def saved_epochs(self) -> int:
        """Epochs the committed checkpoint holds (0 without one)."""
        try:
            return int(json.loads(self._checkpoint.read_text())["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def restore(self, model: keras.Model, batches) -> int:
        """Load the committed weights and optimizer state into `model`, and start the endless
        training `batches` where they left off; the number of epochs already done."""
        return self._restore(model, batches, self.saved_epochs())

    def _restore(self, model: keras.Model, batches, epochs: int) -> int:
        if epochs:
            if not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
            model.load_weights(self.directory / _weights_name(epochs))
        batches.first_batch = int(ops.convert_to_numpy(model.optimizer.iterations))
        return epochs

    def callbacks(self) -> list[keras.callbacks.Callback]:
        """After every other callback: the history first, so a committed epoch is always in
        it, then the checkpoint."""
        return [self.history, _CommitEpoch(self)]

    def commit(self, model: keras.Model, epochs: int) -> None:
        """Write the weights after `epochs` epochs beside the last ones, then commit them."""
        with atomic_path(self.directory / _weights_name(epochs)) as tmp:
            model.save_weights(tmp)
        write_json(self._checkpoint, {"epoch": epochs})
        for old in self.directory.glob("epoch-*.weights.h5"):
            if old.name != _weights_name(epochs):
                old.unlink(missing_ok=True)

    def discard(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


class FollowerBackup(Backup):
    """A cluster's other processes' view of the chief's backup (storage every process sees):
    they resume from it as the chief does (`follow` checks they see the very state the chief
    resumes from), and take part in writing it (saving gathers the weights across processes)
    into a throwaway file, but never change it."""

    def __init__(self, directory: Path, process: int):
        super().__init__(directory)
        self.history = HistoryFile(None)
        self.process = process
        self.epochs = 0  # the chief's, once `follow` has checked this process sees them

    def open(self, fingerprint: dict) -> OpenedBackup:
        return OpenedBackup(None, None)

    def follow(self, fingerprint: dict, chief: BackupState) -> None:
        """Resume from the epochs the chief resumes from, or raise if this process trains
        something else or cannot see them (no shared storage: it would start elsewhere and
        the processes' weights would part, or their collectives hang)."""
        who = f"follower {self.process}"
        if _digest(fingerprint) != chief.fingerprint:
            raise NextframeError(
                f"{who}: params or data differ from the chief's (params.yaml and the data must "
                "be the same on every process)"
            )
        mine = self.state()
        if chief.epochs and (mine.epochs, mine.fingerprint) != (chief.epochs, chief.fingerprint):
            here = f"epoch {mine.epochs}" if mine.epochs else "none"
            if mine.epochs and mine.fingerprint != chief.fingerprint:
                here += " of another training"
            raise NextframeError(
                f"{who}: the chief's backup at {chief.path} is not visible here (epoch "
                f"{chief.epochs} there, {here} here): the backup (dvc.yaml's paths.backup) "
                "needs storage shared by every process"
            )
        self.epochs = chief.epochs

    def restore(self, model: keras.Model, batches) -> int:
        """The chief's epochs, whatever else this process's folder holds."""
        return self._restore(model, batches, self.epochs)

    def record_run(self, run_id: str) -> None:
        pass

    def commit(self, model: keras.Model, epochs: int) -> None:
        with tempfile.TemporaryDirectory(prefix="nextframe-follower-") as tmp:
            model.save_weights(Path(tmp) / _weights_name(epochs))

    def discard(self) -> None:
        pass


def agree_on_backup(cluster: Cluster, backup: Backup, fingerprint: dict) -> None:
    """Once the chief has opened its backup: every follower checks it resumes from the same
    state (`FollowerBackup.follow`); if one cannot, every process stops with its line."""
    chief = BackupState.from_json(from_chief(cluster, "backup", backup.state().to_json()))
    problem = None
    if isinstance(backup, FollowerBackup):
        try:
            backup.follow(fingerprint, chief)
        except NextframeError as exc:
            problem = str(exc)
    problem = first_problem(cluster, "backup followed", problem)
    if problem is not None:
        raise NextframeError(problem)


def _weights_name(epochs: int) -> str:
    return f"epoch-{epochs}.weights.h5"


class _CommitEpoch(keras.callbacks.Callback):
    def __init__(self, backup: Backup):
        super().__init__()
        self.backup = backup

    def on_epoch_end(self, epoch, logs=None):
        self.backup.commit(self.model, epoch + 1)


class HistoryFile(keras.callbacks.Callback):
    """Every epoch's logs, kept in a JSON file beside the backup so that a resumed run still
    reports the epochs it ran before the interruption."""

    def __init__(self, path: Path | None):
        super().__init__()
        self.path = path  # None: kept in memory only
        self.rows: dict[int, dict[str, float]] = {}
        self.first_epoch: int | None = None

    def on_train_begin(self, logs=None):
        if self.path is not None and self.path.exists():
            self.rows = {int(k): v for k, v in json.loads(self.path.read_text()).items()}

    def on_epoch_begin(self, epoch, logs=None):
        if self.first_epoch is None:
            self.first_epoch = epoch
        # An epoch cut short by the interruption is run again: forget what it logged.
        self.rows = {e: row for e, row in self.rows.items() if e < epoch}

    def on_epoch_end(self, epoch, logs=None):
        self.rows[epoch] = {k: float(v) for k, v in (logs or {}).items()}
        if self.path is not None:
            write_json(self.path, self.rows)

    @property
    def history(self) -> dict[str, list[float]]:
        """Like `History.history`: metric name -> one value per epoch, in order."""
        epochs = sorted(self.rows)
        keys = dict.fromkeys(k for e in epochs for k in self.rows[e])
        return {k: [self.rows[e].get(k, math.nan) for e in epochs] for k in keys}
