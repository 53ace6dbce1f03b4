"""DVC stage `train`: fit the causal ConvLSTM closed loop, save it, record the run in MLflow."""

from __future__ import annotations

import json

from nextframe import cli


def main() -> None:
    args = cli.stage_args(
        __doc__,
        data="data/processed",
        model="models/model.keras",
        run_info="models/mlflow_run.json",
        metrics="metrics/train.json",
        history="metrics/train_history.csv",
        backup=(
            "models/backup",
            "per-epoch backup that an interrupted run resumes from (deleted on success)",
        ),
    )

    from nextframe.params import load_params

    params = load_params(args.params)  # validate before the slow imports below

    from nextframe.io import remove_outputs

    remove_outputs(args.model, args.run_info, args.metrics, args.history)

    from nextframe.data.dataset import ClipBatches, FreshBatches
    from nextframe.io import atomic_path, load_npy, write_csv, write_json
    from nextframe.resume import Backup
    from nextframe.train import train_and_track, training_window

    manifest = json.loads((args.data / "manifest.json").read_text())
    data, train = params.data, params.train
    window = training_window(params)
    if train.sequences == "fresh":
        train_path = args.data / "train_digits.npy"
        train_batches = FreshBatches(
            load_npy(train_path, mmap=False),
            train.batch_size,
            train.sequences_per_epoch,
            seed=params.seed,
            window=window,
            frame_size=data.frame_size,
            digits_per_sequence=data.digits_per_sequence,
            step_length=data.step_length,
        )
    else:
        train_path = args.data / "train.npy"
        train_batches = ClipBatches(
            load_npy(train_path),
            train.batch_size,
            shuffle=True,
            seed=params.seed,
            repeat=True,
            window=window,
        )
    # Validation clips end with the frames evaluation predicts: the last `window` of each.
    val_batches = ClipBatches(
        load_npy(args.data / "val.npy"), train.batch_size, shuffle=False, window=window
    )
    backup = Backup(args.backup)
    result = train_and_track(
        params, train_batches, val_batches, manifest=manifest, train_data=train_path, backup=backup
    )
    with atomic_path(args.model) as tmp:
        result.model.save(tmp)
    write_json(args.metrics, result.summary)
    write_csv(args.history, result.history_rows, repr)
    write_json(args.run_info, {"run_id": result.run_id, "tracking_uri": result.tracking_uri})
    backup.discard()


if __name__ == "__main__":
    cli.run(main)
