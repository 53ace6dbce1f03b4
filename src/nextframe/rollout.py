"""Closed-loop prediction: the model's own frames fed back, any horizon, batched, compiled.

`predict_future` encodes the context once and then steps the carried ConvLSTM states, so a
horizon of H costs H steps. Both halves run compiled (`CompiledRollout`): eager Keras spends
most of a small rollout dispatching ops one by one (466 ms eager vs ~40 ms compiled for one
10-frame clip of the default model on 2 CPU cores). `rerun_rollout` is the keras-io example's
way (re-run the whole growing sequence for every new frame, O(H^2)); it is kept to check
equality and for the benchmark.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import keras
import numpy as np
from keras import ops

from nextframe.frames import MIN_CONTEXT_FRAMES, to_unit
from nextframe.model import NextFramePredictor, resized_predictor


def _batches(context: np.ndarray, batch_size: int):
    for start in range(0, len(context), batch_size):
        yield context[start : start + batch_size]


def _bucket(n: int) -> int:
    """The batch size a JAX program is compiled for: the next power of two, so any number of
    clips reuses one of a few programs."""
    return 1 << max(0, n - 1).bit_length()


def _encoded_length(n_context: int) -> int:
    """The context frames a JAX encode program is compiled for: the largest power of two not
    above `n_context`; the frames after it go through the compiled step, so any length
    reuses one of a few programs. (Padding the context instead would feed the causal
    ConvLSTM frames that are not there and change its states.)"""
    return 1 << (n_context.bit_length() - 1)


class CompiledRollout:
    """`model.rollout` as two compiled programs, `encode` (any clip count and context length)
    and `step` (any clip count); the loop over the horizon calls the compiled step, so no clip
    count, context length or horizon compiles anything again on TensorFlow. JAX compiles per
    shape: clip counts are padded up to a power of two, and a context of T frames encodes its
    first `_encoded_length(T)` (a power of two) and steps through the rest, the same cell fed
    the given frames; so one encode per power-of-two clip count and length, one step per
    clip count. `traces` counts compilations. A radar model reads frames of any size: each
    frame size gets its own pair of programs."""

    def __init__(self, model: NextFramePredictor):
        self.model = model
        self.traces = 0
        self.backend = keras.backend.backend()
        self._programs: dict[tuple[int, int, int], tuple[Callable, Callable]] = {}

    def _programs_for(self, frame_shape: tuple[int, int, int]) -> tuple[Callable, Callable]:
        if frame_shape not in self._programs:
            model = self.model
            if frame_shape != model.frames.shape:  # a radar model on a whole composite
                model = resized_predictor(model, frame_shape[0], frame_shape[1])
            self._programs[frame_shape] = (
                self._compile(model, self._encode_body(model), "encode", frame_shape),
                self._compile(model, self._step_body(model), "step", frame_shape),
            )
        return self._programs[frame_shape]

    def _encode_body(self, model: NextFramePredictor) -> Callable:
        def encode(context):
            self.traces += 1  # runs only while the backend traces the function
            predictions, states = model.encode(context, training=False)
            return predictions[:, -1], states

        return encode

    def _step_body(self, model: NextFramePredictor) -> Callable:
        def step(frame, states):
            self.traces += 1
            return model.step(frame, states, training=False)

        return step

    def _compile(
        self,
        model: NextFramePredictor,
        body: Callable,
        name: str,
        frame_shape: tuple[int, int, int],
    ) -> Callable:
        """`body` compiled by the backend: a `tf.function` with free batch and time axes on
        TensorFlow, `jax.jit` over the model's variables on JAX, eager elsewhere."""
        h, w, c = frame_shape
        if self.backend == "tensorflow":
            import tensorflow as tf

            p = model.settings.patch_size
            states = [
                [tf.TensorSpec((None, h // p, w // p, f), "float32")] * 2
                for f in model.settings.filters
            ]
            signature = {
                "encode": [tf.TensorSpec((None, None, h, w, c), "float32")],
                "step": [tf.TensorSpec((None, h, w, c), "float32"), states],
            }[name]
            return tf.function(body, input_signature=signature, autograph=False)
        if self.backend == "jax":
            import jax

            variables = model.variables

            def stateless(values, *args):
                with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
                    return body(*args)

            jitted = jax.jit(stateless)
            return lambda *args: jitted([v.value for v in variables], *args)
        return body

    def __call__(self, context: np.ndarray, horizon: int) -> np.ndarray:
        """float32 (N, T, H, W, C) in [0, 1] -> float32 (N, horizon, H, W, C)."""
        n = len(context)
        if self.backend == "jax" and _bucket(n) != n:
            padding = np.zeros((_bucket(n) - n, *context.shape[1:]), np.float32)
            context = np.concatenate([context, padding])
        encode, step = self._programs_for(tuple(context.shape[2:]))
        n_context = context.shape[1]
        n_encoded = _encoded_length(n_context) if self.backend == "jax" else n_context
        frame, states = encode(context[:, :n_encoded])
        for t in range(n_encoded, n_context):  # the context's last frames, read one by one
            frame, states = step(context[:, t], states)
        future = [frame]
        for _ in range(horizon - 1):
            frame, states = step(frame, states)
            future.append(frame)
        return np.stack([ops.convert_to_numpy(f)[:n] for f in future], axis=1)

    def warm_up(self) -> None:
        """Compile both programs now (a server does it before its first request)."""
        self(np.zeros((1, MIN_CONTEXT_FRAMES, *self.model.frames.shape), np.float32), 2)


# One compiled rollout per loaded model, gone with the model.
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled_rollout(model: NextFramePredictor) -> CompiledRollout:
    """The model's compiled rollout, built on first use."""
    if model not in _COMPILED:
        _COMPILED[model] = CompiledRollout(model)
    return _COMPILED[model]


def predict_future(
    model: NextFramePredictor, context: np.ndarray, horizon: int, batch_size: int = 32
) -> np.ndarray:
    """(N, T, H, W, C) context -> (N, horizon, H, W, C) float32 predictions, O(T + horizon)."""
    rollout = compiled_rollout(model)
    out = [rollout(to_unit(batch), horizon) for batch in _batches(context, batch_size)]
    return np.concatenate(out).astype(np.float32)


def eager_rollout(
    model: NextFramePredictor, context: np.ndarray, horizon: int, batch_size: int = 32
) -> np.ndarray:
    """`model.rollout` op by op, uncompiled: what `predict_future` must equal, and the
    benchmarks' other side."""
    out = [
        ops.convert_to_numpy(model.rollout(to_unit(batch), horizon))
        for batch in _batches(context, batch_size)
    ]
    return np.concatenate(out).astype(np.float32)


def rerun_rollout(
    model: NextFramePredictor, context: np.ndarray, horizon: int, batch_size: int = 32
) -> np.ndarray:
    """The keras-io example's loop: for each new frame, run the whole sequence so far again."""
    out = []
    for batch in _batches(context, batch_size):
        sequence = to_unit(batch)
        for _ in range(horizon):
            predictions, _ = model.encode(sequence)
            next_frame = ops.convert_to_numpy(predictions[:, -1:])
            sequence = np.concatenate([sequence, next_frame], axis=1)
        out.append(sequence[:, -horizon:])
    return np.concatenate(out).astype(np.float32)
