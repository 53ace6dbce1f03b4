"""DVC stage `train`: fit the causal ConvLSTM closed loop, save it, record the run in MLflow."""

from __future__ import annotations

from nextframe import cli
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
    data, fresh = params.data, params.train.sequences == "fresh"
    manifest = load_manifest(args.manifest)
    shape = (data.n_frames, data.frame_size, data.channels)
    val_windows = open_windows(args.val, *shape)
    train_windows = None if fresh else open_windows(args.train, *shape)
    train_digits = load_npy(args.train_digits, mmap=False) if fresh else None
    if fresh and len(train_digits) == 0:
        raise NextframeError(f"{args.train_digits}: no digits to draw fresh sequences from")
    remove_outputs(args.model, args.run_info, args.metrics, args.history)

    import keras

    from nextframe.io import write_csv, write_json
    from nextframe.model import save_predictor
    from nextframe.ops import registry, tracking
    from nextframe.resume import Backup, training_fingerprint
    from nextframe.train import build_trainer, train, training_batches

    train_batches, val_batches = training_batches(params, train_windows, train_digits, val_windows)
    training = build_trainer(params, params.epochs * train_batches.batches_per_epoch)
    flat_params = flatten(params, TRAINING_SECTIONS)
    backup = Backup(args.backup)
    opened = backup.open(training_fingerprint(flat_params, manifest))
    dataset = manifest["dataset"]
    if fresh:
        digits = manifest["train_digits"]["sha256"]
        dataset = {
            "name": "moving_mnist_train_digits",
            "digest": digits,
            "source": str(args.train_digits),
        }
    tags = tracking.run_tags() | tracking.device_tags(training.compute.devices)
    print(f"train: on {tags['device']} ({keras.backend.backend()}, {params.train.precision})")
    with tracking.training_run(flat_params, tags, opened, dataset, training.predictor) as run_id:
        backup.record_run(run_id)
        result = train(
            training, params, train_batches, val_batches, backup, [tracking.epoch_logger()]
        )
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
