"""DVC stage `train`: fit the causal ConvLSTM closed loop, save it, record the run in MLflow.

In a cluster of processes (`nextframe.cluster`: KERAS_DISTRIBUTION_* variables), process 0
runs under `dvc repro` and does all of that; the others run this same command with their
process id, train their share, write nothing and exit 0."""

from __future__ import annotations

import sys

from nextframe import cli
from nextframe.cluster import (
    cluster_from_env,
    exit_now,
    is_collective_failure,
    join,
    lost_processes,
)
from nextframe.data.manifest import load_manifest
from nextframe.data.windows import open_windows
from nextframe.errors import NextframeError
from nextframe.io import load_npy, remove_outputs
from nextframe.params import TRAINING_SECTIONS, flatten, load_params


def main() -> None:
    args = cli.stage_args(
        __doc__, "params", "train", "val", "train_digits", "manifest",
        "model", "run_info", "metrics", "history", "backup",
    )  # fmt: skip
    params = load_params(args.params)  # validated, and the inputs checked, before slow imports
    cluster = cluster_from_env()
    data, fresh = params.data, params.train.sequences == "fresh"
    manifest = load_manifest(args.manifest)
    # radar: crops for validation, the regions training crops are cut from (or crops) to train
    val_windows = open_windows(args.val, data.n_frames, data.train_size, data.channels)
    train_windows = (
        None if fresh else open_windows(args.train, data.n_frames, data.stored_size, data.channels)
    )
    train_digits = load_npy(args.train_digits, mmap=False) if fresh else None
    if fresh and len(train_digits) == 0:
        raise NextframeError(f"{args.train_digits}: no digits to draw fresh sequences from")
    if cluster.chief:  # the other processes of a cluster write nothing
        remove_outputs(args.model, args.run_info, args.metrics, args.history)
    join(cluster)  # before any computation
    try:
        fit_and_save(args, params, manifest, cluster, train_windows, train_digits, val_windows)
    except Exception as exc:
        if cluster.joined and is_collective_failure(exc):
            print(f"error: {lost_processes(cluster, exc)}", file=sys.stderr)
            exit_now(1)
        raise
    if cluster.joined:
        exit_now(0)  # the runtime's shutdown would wait on processes still finishing


def fit_and_save(args, params, manifest, cluster, train_windows, train_digits, val_windows):
    """Train; the chief records the run in MLflow and writes the outputs."""
    import keras

    from nextframe.io import write_csv, write_json
    from nextframe.model import save_predictor
    from nextframe.ops import registry, tracking
    from nextframe.ops.trial import TrialPruned, reporter_for, trial_from_env
    from nextframe.resume import Backup, FollowerBackup, agree_on_backup, training_fingerprint
    from nextframe.train import build_trainer, train, training_batches

    train_batches, val_batches = training_batches(
        params, train_windows, train_digits, val_windows, cluster
    )
    training = build_trainer(params, params.epochs * train_batches.batches_per_epoch, cluster)
    flat_params = flatten(params, TRAINING_SECTIONS)
    backup = Backup(args.backup) if cluster.chief else FollowerBackup(args.backup, cluster.process)
    fingerprint = training_fingerprint(flat_params, manifest)
    opened = backup.open(fingerprint)
    agree_on_backup(cluster, backup, fingerprint)  # the chief has kept or discarded it
    trial = trial_from_env() if cluster.chief else None  # a trial of `nextframe tune`
    tags = tracking.run_tags() | tracking.device_tags(training.compute.devices)
    tags |= trial.tags() if trial else {}
    where = f"{cluster.describe()}, " if cluster.joined else ""
    print(
        f"train: {where}on {tags['device']} ({keras.backend.backend()}, {params.train.precision})"
    )
    if not cluster.chief:
        train(training, params, train_batches, val_batches, backup)
        return
    dataset = manifest["dataset"]
    if params.train.sequences == "fresh":
        digits = manifest["train_digits"]["sha256"]
        dataset = {
            "name": "moving_mnist_train_digits",
            "digest": digits,
            "source": str(args.train_digits),
        }
    with tracking.training_run(
        flat_params, tags, opened.resume_run_id, opened.abandoned, dataset, training.predictor
    ) as run_id:
        backup.record_run(run_id)
        loggers = [tracking.epoch_logger()]
        if trial is not None:  # before the logger: the epoch's val_mse is logged too
            loggers.insert(0, reporter_for(trial, params, training.predictor, val_windows))
        try:
            result = train(training, params, train_batches, val_batches, backup, loggers)
        except TrialPruned:
            backup.discard()  # a pruned trial leaves nothing to resume
            raise
        if opened.resume_run_id is not None:
            tracking.mark_resumed(backup.history.first_epoch)
        registry.log_trained_model(result.model)
    save_predictor(result.model, args.model)
    write_json(args.metrics, result.summary)
    write_csv(args.history, result.history_rows, repr)
    write_json(args.run_info, {"run_id": run_id, "tracking_uri": tracking.current_uri()})
    backup.discard()


if __name__ == "__main__":
    cli.run(main)
