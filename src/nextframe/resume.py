"""Resuming an interrupted training run: the backup it left, and a data order that picks up.

The backup directory holds Keras's `BackupAndRestore` checkpoint (weights, optimizer state,
epoch), every finished epoch's logs, the MLflow run id, and a fingerprint of the params and
data it was made with. Only a backup of the very same training is resumed.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import keras
from keras import ops

from nextframe.io import write_json

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


@dataclass(frozen=True)
class OpenedBackup:
    """`resume_run_id`: the MLflow run to continue; `abandoned_run_id`: the run of a backup
    that was discarded (other params or data), which nothing will ever finish."""

    resume_run_id: str | None
    abandoned_run_id: str | None


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

    def open(self, fingerprint: dict) -> OpenedBackup:
        """Keep the backup only if an interrupted run of this exact training left it."""
        abandoned = None
        if self.directory.exists():
            try:
                same = json.loads(self._stamp.read_text()) == fingerprint
            except (OSError, ValueError):
                same = False
            if not same:
                abandoned = self._recorded_run()
                print(f"train: {self.directory} is from other params or data; starting over")
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

    def callbacks(self, batches) -> list[keras.callbacks.Callback]:
        """In this order, after every other callback: the history (so a backed-up epoch is
        always in it), Keras's backup, then the data order (needs the restored optimizer)."""
        return [
            self.history,
            keras.callbacks.BackupAndRestore(
                str(self.directory / "keras"), delete_checkpoint=False
            ),
            ResumeDataOrder(batches),
        ]

    def discard(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


class ResumeDataOrder(keras.callbacks.Callback):
    """Starts the endless training batches where the restored optimizer left off, so a
    resumed run sees the batches an uninterrupted one would. Must come after
    `BackupAndRestore`, which restores the optimizer's step count in `on_train_begin`."""

    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def on_train_begin(self, logs=None):
        self.batches.first_batch = int(ops.convert_to_numpy(self.model.optimizer.iterations))


class HistoryFile(keras.callbacks.Callback):
    """Every epoch's logs, kept in a JSON file beside the backup so that a resumed run still
    reports the epochs it ran before the interruption."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self.rows: dict[int, dict[str, float]] = {}
        self.first_epoch: int | None = None

    def on_train_begin(self, logs=None):
        if self.path.exists():
            self.rows = {int(k): v for k, v in json.loads(self.path.read_text()).items()}

    def on_epoch_begin(self, epoch, logs=None):
        if self.first_epoch is None:
            self.first_epoch = epoch
        # An epoch cut short by the interruption is run again: forget what it logged.
        self.rows = {e: row for e, row in self.rows.items() if e < epoch}

    def on_epoch_end(self, epoch, logs=None):
        self.rows[epoch] = {k: float(v) for k, v in (logs or {}).items()}
        write_json(self.path, self.rows)

    @property
    def history(self) -> dict[str, list[float]]:
        """Like `History.history`: metric name -> one value per epoch, in order."""
        epochs = sorted(self.rows)
        keys = dict.fromkeys(k for e in epochs for k in self.rows[e])
        return {k: [self.rows[e].get(k, math.nan) for e in epochs] for k in keys}
