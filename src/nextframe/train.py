"""The training method around the step: where it runs (precision, devices, the cluster's data
layout), the optimiser, schedule and compiled loss, the batches, resuming from a backup and
the callbacks that guard a run. The step itself, what `fit` trains, is
`nextframe.trainer.SequenceTrainer`, on one screen.

No tracking here: the train stage hands MLflow in as Keras callbacks (`nextframe.ops.tracking`).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from nextframe.cluster import ONE_PROCESS, Cluster, check_batch_size, split_epoch
from nextframe.data.dataset import ClipBatches, FreshBatches, IndexedBatches
from nextframe.data.moving_mnist import SequenceSpec
from nextframe.errors import NextframeError
from nextframe.frames import FrameFormat
from nextframe.model import NextFramePredictor, build_model
from nextframe.params import Params, TrainParams
from nextframe.resume import Backup
from nextframe.trainer import LOSSES, SequenceTrainer


def set_global_determinism(seed: int) -> None:
    """Same seed, same numbers: seeds Python, numpy and the backend; on TF also op determinism."""
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


@dataclass(frozen=True)
class Compute:
    """The devices training runs on (of every process in a cluster), the data-parallel layout
    over them (None for one), and the cluster of processes this one belongs to."""

    devices: list[str]
    distribution: keras.distribution.Distribution | None
    cluster: Cluster = ONE_PROCESS

    def scope(self) -> contextlib.AbstractContextManager:
        return self.distribution.scope() if self.distribution else contextlib.nullcontext()


def training_devices() -> list[str]:
    """The devices training spans: every visible one (of every process of a joined cluster)
    on JAX, where Keras distributes; the first elsewhere."""
    devices = keras.distribution.list_devices()
    return devices if keras.backend.backend() == "jax" else devices[:1]


def plan_compute(train: TrainParams, cluster: Cluster = ONE_PROCESS) -> Compute:
    """Every visible accelerator (of every process of the cluster), data parallel on JAX
    (Keras distributes only there): each device takes an equal share of every batch, and
    their gradients are averaged. Each process feeds its own devices' shares."""
    devices = training_devices()
    if len(devices) == 1:
        return Compute(devices, None, cluster)
    check_batch_size(train.batch_size, len(devices), cluster.processes)
    # In a cluster every process hands Keras its own share of each batch: nothing to shard.
    layout = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=not cluster.joined)
    return Compute(devices, layout, cluster)


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Layers built inside compute in `name` (`mixed_bfloat16`: bfloat16 maths, float32
    weights); the global policy is restored after, so nothing else is built that way."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def float32_copy(model: NextFramePredictor, always: bool = False) -> NextFramePredictor:
    """The same weights in a float32 model: what is saved, so it loads and predicts in float32
    anywhere, whatever precision trained it. (Mixed-precision weights are float32 already.)
    `always`: a copy even of a float32 model, on this process alone (a cluster's model is
    spread over every process; saving it would need them all)."""
    if model.dtype_policy.name == "float32" and not always:
        return model
    with dtype_policy("float32"):
        copy = build_model(model.settings, model.horizon, model.frames)
    copy.set_weights(model.get_weights())
    return copy


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
    # "balanced" is the radar trainer's own (`SequenceTrainer.compute_loss`): no Keras loss.
    model.compile(optimizer=make_optimizer(train, total_steps), loss=LOSSES.get(train.loss))
    # Its slots now, not inside the first traced step: a step that creates variables is traced
    # twice by tf.function (on TensorFlow without a strategy Keras defers the build to it).
    model.optimizer.build(model.trainable_variables)


class EpochStats(keras.callbacks.Callback):
    """Adds wall seconds, sequences per second and the current learning rate to the logs,
    so every logger after it (MLflow, CSV) records them."""

    def __init__(self, sequences_per_epoch: int):
        super().__init__()
        self.n_sequences = sequences_per_epoch
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


def fit(
    model: keras.Model,
    train_batches,
    val_batches,
    epochs: int,
    train: TrainParams,
    backup: Backup,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
) -> dict[str, list[float]]:
    """Keras fit with the guards every run needs, resumed from `backup` if it holds a state;
    the history of every epoch, those before an interruption included."""
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.TerminateOnNaN(),
        EpochStats(train_batches.sequences_per_epoch),
    ]
    if train.lr_schedule == "plateau":
        # The keras-io example's schedule: a tenth of the rate when val_loss stalls.
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
    callbacks.extend(backup.callbacks())
    # A live bar in a terminal; one line per epoch in logs (dvc exp run --queue, CI).
    verbose = 1 if sys.stdout.isatty() else 2
    initial_epoch = backup.restore(model, train_batches)
    model.fit(
        train_batches,
        steps_per_epoch=train_batches.batches_per_epoch,
        shuffle=False,  # the batches shuffle themselves, per epoch
        validation_data=val_batches,
        initial_epoch=initial_epoch,
        epochs=epochs,
        callbacks=callbacks,
        verbose=verbose,
    )
    return backup.history.history


@dataclass(frozen=True)
class Training:
    """A compiled trainer and where it runs: what `build_trainer` sets up and `fit` trains."""

    compute: Compute
    predictor: NextFramePredictor
    trainer: SequenceTrainer


def build_trainer(params: Params, total_steps: int, cluster: Cluster = ONE_PROCESS) -> Training:
    """The predictor from `model`, wrapped for training as `train` says, compiled for
    `total_steps` optimiser steps (the cosine schedule's length), on the devices
    `plan_compute` picks (of every process of `cluster`, joined already): the one setup the
    stage, the benchmarks and the tests use."""
    set_global_determinism(params.seed)
    data, train = params.data, params.train
    compute = plan_compute(train, cluster)
    with compute.scope(), dtype_policy(train.precision):
        predictor = build_model(params.model, data.horizon, FrameFormat.of(data, data.n_context))
        trainer = SequenceTrainer(
            predictor,
            train.context_frames,
            train.feedback,
            train.loss,
            truth_decay_steps=round(train.scheduled_sampling * total_steps),
            seed=params.seed,
            name="trainer",
        )
        trainer.build()
        compile_model(trainer, train, total_steps=total_steps)
    return Training(compute, predictor, trainer)


@dataclass(frozen=True)
class TrainingResult:
    """What a finished training hands the stage to write: the float32 predictor, one row per
    epoch (for `dvc plots`) and the summary (for `dvc metrics`)."""

    model: NextFramePredictor
    history_rows: list[dict[str, float]]
    summary: dict[str, float]


def train(
    training: Training,
    params: Params,
    train_batches,
    val_batches,
    backup: Backup,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainingResult:
    """Fit `training` for `epochs`, resumed from `backup` if it holds a state of this very
    training; `callbacks` (tracking) see every epoch. A diverged run raises, its backup gone."""
    with training.compute.scope():
        history = fit(
            training.trainer,
            train_batches,
            val_batches,
            params.epochs,
            params.train,
            backup,
            extra_callbacks=callbacks,
        )
    try:
        check_finite(history)
    except NextframeError:
        backup.discard()  # a diverged state is nothing to resume from
        raise
    rows = history_rows(history)
    summary = {
        "loss": rows[-1]["loss"],
        "val_loss": rows[-1]["val_loss"],
        "best_val_loss": min(r["val_loss"] for r in rows),
        "epochs_run": len(rows),
        "params_count": int(training.predictor.count_params()),
    }
    model = float32_copy(training.predictor, always=training.compute.cluster.joined)
    return TrainingResult(model, rows, summary)


def training_window(params: Params) -> int:
    """Frames per training clip: `train.context_frames` given, then the horizon predicted."""
    return params.train.context_frames + params.data.horizon


def _rows_used(
    windows, params: Params, cluster: Cluster, local_devices: int, validation: bool
) -> int:
    """How many of a split's clips an epoch uses so every batch splits evenly over every
    device (`nextframe.cluster.split_epoch`); the chief says once what is left out."""
    counted = params.data.source in ("generated", "download", "openstl")
    split, rows_param = ("validation", "data.n_val") if validation else ("training", "data.n_train")
    rows_param = rows_param if counted else "data.val_fraction"
    batch_size, n_devices = params.train.batch_size, cluster.processes * local_devices
    used = split_epoch(len(windows), batch_size, cluster.processes, local_devices, rows_param)
    if used.dropped and cluster.chief:
        which = "the last" if validation else "each epoch, a shuffled"
        print(
            f"train: {which} {used.dropped} of {len(windows)} {split} clips are left out: every "
            f"batch (train.batch_size {batch_size}) must split evenly over the {n_devices} "
            f"devices; a multiple of {n_devices} clips ({rows_param}) keeps them all"
        )
    return used.rows


def training_batches(
    params: Params,
    train_windows,
    train_digits: np.ndarray,
    val_windows,
    cluster: Cluster = ONE_PROCESS,
    local_devices: int | None = None,
) -> tuple[IndexedBatches, ClipBatches]:
    """Endless training batches (windows of the train split, or sequences drawn fresh from the
    digits every epoch) and one epoch of validation clips, this process's share of each batch
    in a `cluster`. Validation clips end with the frames evaluation predicts: the last
    `training_window` of each window. Every batch, an epoch's last included, splits evenly
    over the `local_devices` of each process (None: `training_devices`, joined already)."""
    train, data, window = params.train, params.data, training_window(params)
    if local_devices is None:
        local_devices = len(training_devices()) // cluster.processes
    if train.sequences == "fresh":
        spec = SequenceSpec.of(params.data).with_frames(window)
        batches = FreshBatches(
            train_digits, train.batch_size, train.sequences_per_epoch, spec, seed=params.seed
        )
    else:
        batches = ClipBatches(
            train_windows,
            train.batch_size,
            shuffle=True,
            seed=params.seed,
            repeat=True,
            window=window,
            rows_per_epoch=_rows_used(train_windows, params, cluster, local_devices, False),
            crop=data.train_size if data.stored_size > data.train_size else None,
            augment=train.augment,
            reverse_time=train.reverse_time,
        )
    val_rows = _rows_used(val_windows, params, cluster, local_devices, True)
    val = ClipBatches(
        val_windows, train.batch_size, shuffle=False, window=window, rows_per_epoch=val_rows
    )
    for each in (batches, val):
        each.share(cluster.process, cluster.processes)
    return batches, val
