"""Fitting the predictor: optimiser, loss, schedule and the callbacks that guard a run."""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
from keras import ops

from nextframe.errors import NextframeError
from nextframe.io import write_json
from nextframe.params import TrainParams


@keras.saving.register_keras_serializable(package="nextframe")
def l1_plus_l2(y_true, y_pred):
    """Mean absolute plus mean squared error: sharper than MSE alone on sparse digits."""
    error = y_pred - y_true
    return ops.mean(ops.abs(error), axis=-1) + ops.mean(ops.square(error), axis=-1)


LOSSES = {"bce": "binary_crossentropy", "mse": "mean_squared_error", "l1+l2": l1_plus_l2}


def set_global_determinism(seed: int) -> None:
    """Same seed, same numbers: seeds Python, numpy and the backend; on TF also op determinism."""
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def make_optimizer(train: TrainParams, total_steps: int) -> keras.optimizers.Optimizer:
    lr = train.lr
    if train.lr_schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(train.lr, decay_steps=max(total_steps, 1))
    kwargs = {"learning_rate": lr}
    if train.clipnorm > 0:
        kwargs["clipnorm"] = train.clipnorm
    optimizers = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "rmsprop": keras.optimizers.RMSprop,
        "sgd": keras.optimizers.SGD,
    }
    return optimizers[train.optimizer](**kwargs)


def compile_model(model: keras.Model, train: TrainParams, total_steps: int) -> None:
    model.compile(optimizer=make_optimizer(train, total_steps), loss=LOSSES[train.loss])


class EpochStats(keras.callbacks.Callback):
    """Adds wall seconds, sequences per second and the current learning rate to the logs,
    so every logger after it (MLflow, CSV) records them."""

    def __init__(self, n_sequences: int):
        super().__init__()
        self.n_sequences = n_sequences
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        seconds = time.perf_counter() - self._start
        logs["epoch_seconds"] = seconds
        logs["sequences_per_second"] = self.n_sequences / seconds if seconds > 0 else 0.0
        logs["lr"] = float(ops.convert_to_numpy(self.model.optimizer.learning_rate))


def check_finite(history: dict[str, list[float]]) -> None:
    """TerminateOnNaN stops fit quietly; turn that into an error so no model is saved."""
    keys = [k for k in ("loss", "val_loss") if k in history]
    for epoch in range(len(history.get("loss", []))):
        for key in keys:
            value = history[key][epoch]
            if not math.isfinite(value):
                raise NextframeError(
                    f"training diverged: {key} became {value} at epoch {epoch + 1} "
                    "(lower train.lr or set train.clipnorm)"
                )


def history_rows(history: dict[str, list[float]]) -> list[dict[str, float]]:
    """Per-epoch rows for `dvc plots`: epoch, loss, val_loss, lr (no wall times: they vary)."""
    keys = [k for k in ("loss", "val_loss", "lr") if k in history]
    n_epochs = len(history.get("loss", []))
    return [
        {"epoch": epoch + 1, **{k: float(np.float64(history[k][epoch])) for k in keys}}
        for epoch in range(n_epochs)
    ]


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

    def __init__(self, path: Path | None):
        super().__init__()
        self.path = path
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


def fit(
    model: keras.Model,
    train_batches,
    val_batches,
    epochs: int,
    train: TrainParams,
    *,
    backup_dir: Path | None = None,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
) -> HistoryFile:
    """Keras fit with the guards every run needs; resumes from `backup_dir` if it holds one.

    The backup (weights, optimizer state, epoch: `keras.callbacks.BackupAndRestore`) is
    written after every epoch; the caller deletes it once the outputs are saved.
    """
    history = HistoryFile(backup_dir / "history.json" if backup_dir else None)
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.TerminateOnNaN(),
        EpochStats(len(train_batches.sequences_uint8)),
    ]
    if train.lr_schedule == "plateau":
        # The seed's schedule: a tenth of the rate when val_loss stalls.
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.1, patience=train.plateau_patience
            )
        )
    if train.early_stopping_patience > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=train.early_stopping_patience,
                restore_best_weights=True,
            )
        )
    callbacks.extend(extra_callbacks)
    callbacks.append(history)  # before the backup: a backed-up epoch is always in the history
    if backup_dir is not None:
        callbacks.append(
            keras.callbacks.BackupAndRestore(str(backup_dir / "keras"), delete_checkpoint=False)
        )
    callbacks.append(ResumeDataOrder(train_batches))
    # A live bar in a terminal; one line per epoch in logs (dvc exp run --queue, CI).
    verbose = 1 if sys.stdout.isatty() else 2
    model.fit(
        train_batches,
        steps_per_epoch=train_batches.batches_per_epoch,
        shuffle=False,  # the batches shuffle themselves, per epoch
        validation_data=val_batches,
        epochs=epochs,
        callbacks=callbacks,
        verbose=verbose,
    )
    return history


def training_fingerprint(flat_params: dict[str, str], manifest: dict) -> dict:
    """What a backup must match to be resumed: every param training reads, and the data."""
    trained_on = ("seed", "epochs", "data.", "model.", "train.")
    return {
        "params": {k: v for k, v in sorted(flat_params.items()) if k.startswith(trained_on)},
        "data": {split: info["sha256"] for split, info in sorted(manifest["splits"].items())},
    }


def open_backup(backup_dir: Path, fingerprint: dict) -> str | None:
    """Keep `backup_dir` only if an interrupted run of this exact training left it; return
    the MLflow run id that run recorded, to continue it."""
    stamp = backup_dir / "fingerprint.json"
    if backup_dir.exists():
        try:
            same = json.loads(stamp.read_text()) == fingerprint
        except (OSError, ValueError):
            same = False
        if not same:
            print(f"train: {backup_dir} is from other params or data; starting over")
            shutil.rmtree(backup_dir)
    if not backup_dir.exists():
        write_json(stamp, fingerprint)
        return None
    try:
        run_id = json.loads((backup_dir / "mlflow_run.json").read_text())["run_id"]
    except (OSError, ValueError, KeyError):
        return None
    print(f"train: resuming the interrupted run {run_id} from {backup_dir}")
    return run_id


def train_and_track(
    params,
    flat_params: dict[str, str],
    train_batches,
    val_batches,
    *,
    manifest: dict,
    model_path: Path,
    run_info_path: Path,
    metrics_path: Path,
    history_path: Path,
    backup_dir: Path,
) -> dict[str, float]:
    """Build, fit and save the model inside one MLflow run; outputs only on success.

    An interrupted run (killed, Ctrl-C) leaves `backup_dir`; running again with the same
    params and data continues from its last finished epoch, in the same MLflow run.
    """
    import mlflow
    import mlflow.keras

    from nextframe import tracking
    from nextframe.io import atomic_path, write_text
    from nextframe.model import SequenceTrainer, build_model

    set_global_determinism(params.seed)
    data = params.data
    model = build_model(
        params.model,
        horizon=data.horizon,
        head_bias_init=params.train.head_bias_init,
        frame_size=data.frame_size,
    )
    context_frames = params.train.context_frames
    trainer = SequenceTrainer(model, context_frames, params.train.feedback, name="trainer")
    trainer.build((None, training_window(params) - 1, data.frame_size, data.frame_size, 1))
    compile_model(
        trainer, params.train, total_steps=params.epochs * train_batches.batches_per_epoch
    )
    resume_run_id = open_backup(backup_dir, training_fingerprint(flat_params, manifest))

    with tracking.tracked_run(flat_params, tracking.run_tags(), resume_run_id) as run_id:
        write_json(backup_dir / "mlflow_run.json", {"run_id": run_id})
        log_dataset(manifest)
        mlflow.log_param("params_count", model.count_params())
        mlflow.log_text(summary_text(model), "predictor_summary.txt")
        history = fit(
            trainer,
            train_batches,
            val_batches,
            params.epochs,
            params.train,
            backup_dir=backup_dir,
            extra_callbacks=[mlflow.keras.MlflowCallback()],
        )
        if resume_run_id is not None and history.first_epoch is not None:
            mlflow.set_tag("resumed_at_epoch", str(history.first_epoch + 1))
        try:
            check_finite(history.history)
        except NextframeError:
            shutil.rmtree(backup_dir)  # a diverged state is nothing to resume from
            raise
        rows = history_rows(history.history)
        summary = {
            "loss": rows[-1]["loss"],
            "val_loss": rows[-1]["val_loss"],
            "best_val_loss": min(r["val_loss"] for r in rows),
            "epochs_run": len(rows),
            "params_count": int(model.count_params()),
        }
        with atomic_path(model_path) as tmp:
            model.save(tmp)
        mlflow.keras.log_model(
            model,
            name="model",
            signature=model_signature(data.frame_size, data.horizon),
            pip_requirements=pinned_requirements(),
        )
        write_json(metrics_path, summary)
        header = list(rows[0])
        lines = [",".join(header)] + [",".join(repr(r[k]) for k in header) for r in rows]
        write_text(history_path, "\n".join(lines) + "\n")
        write_json(run_info_path, {"run_id": run_id, "tracking_uri": mlflow.get_tracking_uri()})
    shutil.rmtree(backup_dir)
    return summary


def training_window(params) -> int:
    """Frames per training clip: `train.context_frames` given, then the horizon predicted."""
    return params.train.context_frames + params.data.horizon


def summary_text(model: keras.Model) -> str:
    """`model.summary()` as text, for the run's artifacts."""
    lines: list[str] = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    return "\n".join(lines) + "\n"


def model_signature(frame_size: int, horizon: int):
    """Context of any length in, `horizon` frames out; -1 for batch and time."""
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    frame = (frame_size, frame_size, 1)
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype("float32"), (-1, -1, *frame), "context")]),
        outputs=Schema([TensorSpec(np.dtype("float32"), (-1, horizon, *frame), "future")]),
    )


def pinned_requirements() -> list[str]:
    """The versions running now, so MLflow needn't infer them (slow) to log the model:
    Keras, numpy and the backend that trained it."""
    from importlib.metadata import PackageNotFoundError, version

    backend_packages = {
        "tensorflow": ("tensorflow-cpu", "tensorflow"),
        "jax": ("jax", "jaxlib"),
        "torch": ("torch",),
    }
    pins = []
    for name in ("keras", "numpy", *backend_packages.get(keras.backend.backend(), ())):
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return pins


def log_dataset(manifest: dict) -> None:
    """Record the training data as an MLflow dataset input, digested by the preprocess manifest."""
    import mlflow
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.sources import LocalArtifactDatasetSource

    split = manifest["splits"]["train"]
    dataset = MetaDataset(
        source=LocalArtifactDatasetSource("data/processed/train.npy"),
        name="moving_mnist_train",
        digest=split["sha256"][:16],
    )
    mlflow.log_input(dataset, context="training")
