"""The ConvLSTM next-frame predictor, built from `model` params with Keras 3 APIs only.

Causal by construction: frames enter one at a time through a stack of `ConvLSTM2D`
layers, and each prediction comes from a per-frame head (a spatial conv, no temporal mixing)
on the top layer's output. The keras-io example's Conv3D head mixed frames t-1..t+1, so its
output t saw input t+1, its own target; nothing here reads a frame later than it predicts from.

Frames are folded into `patch_size` x `patch_size` patches (space-to-depth: 64x64x1 ->
16x16x16 for patch 4), which cuts the recurrent convolution's cost about patch_size**2 times.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import keras
from keras import layers, ops

from nextframe.frames import FrameFormat
from nextframe.io import atomic_path
from nextframe.params import ModelParams

State = list  # [h, c] of one ConvLSTM2D layer


def space_to_depth(frames, patch_size: int):
    """(..., H, W, C) -> (..., H/p, W/p, p*p*C); keeps leading axes (batch, time)."""
    if patch_size == 1:
        return frames
    shape = ops.shape(frames)
    lead, (h, w, c) = shape[:-3], shape[-3:]
    p = patch_size
    x = ops.reshape(frames, (-1, h // p, p, w // p, p, c))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (*lead, h // p, w // p, p * p * c))


def depth_to_space(patches, patch_size: int, channels: int = 1):
    """Inverse of `space_to_depth`."""
    if patch_size == 1:
        return patches
    shape = ops.shape(patches)
    lead, (hp, wp) = shape[:-3], shape[-3:-1]
    p = patch_size
    x = ops.reshape(patches, (-1, hp, wp, p, p, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (*lead, hp * p, wp * p, channels))


def _norm_layer(kind: str, groups: int, name: str) -> layers.Layer | None:
    if kind == "none":
        return None
    if kind == "batch":
        return layers.BatchNormalization(name=name)
    if kind == "layer":
        return layers.LayerNormalization(axis=(-3, -2, -1), name=name)
    if kind == "group":
        return layers.GroupNormalization(groups=groups, name=name)
    raise ValueError(f"unknown normalization {kind!r}")


@keras.saving.register_keras_serializable(package="nextframe")
class NextFramePredictor(keras.Model):
    """Reads context frames (B, T, H, W, C) in [0, 1]; returns the next `horizon` frames.

    The context length T is free; the future is predicted closed loop, each predicted frame
    fed back as the next input. `encode` and `step` are the two halves, used by
    `nextframe.rollout` for any horizon. `frames` records how clips were brought to the
    model's frames (`nextframe.frames.FrameFormat`), so predict and serve read clips alike.
    """

    def __init__(
        self, settings: ModelParams | dict, horizon: int, frames: FrameFormat | dict, **kwargs
    ):
        super().__init__(**kwargs)
        # Dicts when Keras loads a saved model: validated like params.yaml's `model` section.
        self.settings = ModelParams.model_validate(settings)
        self.frames = frames if isinstance(frames, FrameFormat) else FrameFormat.from_config(frames)
        self.horizon = horizon
        s = self.settings
        self.recurrent = [
            layers.ConvLSTM2D(
                f,
                k,
                padding="same",
                activation=s.activation,
                return_sequences=True,
                return_state=True,
                name=f"conv_lstm_{i}",
            )
            for i, (f, k) in enumerate(zip(s.filters, s.kernel_sizes, strict=True))
        ]
        self.norms = [
            _norm_layer(s.normalization, s.norm_groups, f"norm_{i}")
            for i in range(len(s.filters) - 1)
        ]
        # Per frame: a spatial kernel only, so no prediction mixes time steps. Frames are
        # mostly black: a negative bias starts the sigmoid near 0 (-3: 0.05) instead of 0.5.
        # Predicting the change instead, the head starts at zero: an untrained model repeats
        # the frame it reads (in the frame of the moving rain, pysteps' extrapolation).
        changes = s.predicts == "change"
        self.head = layers.Conv2D(
            s.patch_size * s.patch_size * self.frames.channels,
            s.head_kernel_size,
            padding="same",
            activation="tanh" if changes else "sigmoid",
            kernel_initializer="zeros" if changes else "glorot_uniform",
            bias_initializer=keras.initializers.Constant(0.0 if changes else s.head_bias_init),
            name="head",
        )

    def build(self, input_shape):
        h, w, c = input_shape[-3:]
        p = self.settings.patch_size
        shape = (None, None, h // p, w // p, p * p * c)
        for i, rnn in enumerate(self.recurrent):
            rnn.build(shape)
            shape = (*shape[:-1], self.settings.filters[i])
            if i < len(self.norms) and self.norms[i] is not None:
                self.norms[i].build((None, *shape[2:]))
        self.head.build((None, *shape[2:]))
        self.built = True

    def _normalize(self, i: int, x, training):
        norm = self.norms[i] if i < len(self.norms) else None
        return x if norm is None else norm(x, training=training)

    def _predict_frame(self, top_output, read_frame):
        """Top layer's output (B, h, w, filters) and the frame it read (B, H, W, C) -> next
        frame (B, H, W, C) in [0, 1], float32 also under mixed precision (the loss and the
        fed-back frame stay exact). With `predicts: change` the head's output is added to the
        frame read."""
        patches = self.head(top_output)
        frame = depth_to_space(patches, self.settings.patch_size, self.frames.channels)
        frame = ops.cast(frame, "float32")
        if self.settings.predicts == "change":
            frame = ops.clip(ops.cast(read_frame, "float32") + frame, 0.0, 1.0)
        return frame

    def encode(self, context, training=None):
        """Run the context through the stack once: next-frame predictions for every context
        step (B, T, H, W, 1) and the final [h, c] of each layer."""
        x = space_to_depth(context, self.settings.patch_size)
        states: list[State] = []
        for i, rnn in enumerate(self.recurrent):
            x, h, c = rnn(x, training=training)
            states.append([h, c])
            if i < len(self.recurrent) - 1:
                shape = ops.shape(x)
                merged = ops.reshape(x, (-1, *shape[2:]))  # norm each frame on its own
                x = ops.reshape(self._normalize(i, merged, training), shape)
        shape = ops.shape(x)
        top = ops.reshape(x, (-1, *shape[2:]))
        read = ops.reshape(context, (-1, *context.shape[2:]))
        predictions = ops.reshape(
            self._predict_frame(top, read), (shape[0], shape[1], *context.shape[2:])
        )
        return predictions, states

    def step(self, frame, states: list[State], training=None):
        """Advance one frame (B, H, W, C) from carried states -> (next frame, new states)."""
        x = space_to_depth(frame, self.settings.patch_size)
        new_states: list[State] = []
        for i, rnn in enumerate(self.recurrent):
            x, state = rnn.cell(x, states[i], training=training)
            new_states.append(state)
            if i < len(self.recurrent) - 1:
                x = self._normalize(i, x, training)
        return self._predict_frame(x, frame), new_states

    def continue_rollout(self, frame, states: list[State], n_frames: int, training=None):
        """Feed `frame` (a prediction) back and keep predicting: (B, n_frames, H, W, C)."""
        future = []
        for _ in range(n_frames):
            frame, states = self.step(frame, states, training=training)
            future.append(frame)
        return ops.stack(future, axis=1)

    def rollout(self, context, horizon: int, training=None):
        """Closed-loop prediction of `horizon` frames after `context`: O(T) in total."""
        context_predictions, states = self.encode(context, training=training)
        first = context_predictions[:, -1]
        if horizon == 1:
            return first[:, None]
        rest = self.continue_rollout(first, states, horizon - 1, training=training)
        return ops.concatenate([first[:, None], rest], axis=1)

    def call(self, context, training=None):
        return self.rollout(context, self.horizon, training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "settings": self.settings.model_dump(),
            "horizon": self.horizon,
            "frames": self.frames.to_config(),
        }


def build_model(settings: ModelParams, horizon: int, frames: FrameFormat) -> NextFramePredictor:
    """A built predictor from the validated `model` params section, for `frames`."""
    predictor = NextFramePredictor(settings, horizon, frames, name="next_frame_predictor")
    predictor.build((None, None, frames.size, frames.size, frames.channels))
    return predictor


def resized_predictor(model: NextFramePredictor, height: int, width: int) -> NextFramePredictor:
    """The same weights built for frames of `height` x `width` (multiples of the patch): Keras'
    ConvLSTM layers are built for one frame size, their weights fit any."""
    copy = NextFramePredictor(model.settings, model.horizon, model.frames, name=model.name)
    copy.build((None, None, height, width, model.frames.channels))
    copy.set_weights(model.get_weights())
    return copy


def save_predictor(model: NextFramePredictor, path: str | os.PathLike[str]) -> None:
    """Save atomically, as a `.keras` file that is byte for byte the same for the same weights:
    Keras stamps the save time into the archive (an entry's date and `date_saved`), which
    would make DVC store every retraining anew and `dvc.lock` change for nothing."""
    with atomic_path(path) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp) as archive:
            entries = [(info, archive.read(info)) for info in archive.infolist()]
        with zipfile.ZipFile(tmp, "w") as archive:
            for info, content in entries:
                if info.filename == "metadata.json":
                    metadata = json.loads(content)
                    metadata.pop("date_saved", None)
                    content = json.dumps(metadata).encode()
                fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
                fixed.compress_type = info.compress_type
                fixed.external_attr = info.external_attr
                archive.writestr(fixed, content)


def load_predictor(path, frames_of=None) -> NextFramePredictor:
    """Load a saved predictor with Keras safe mode (no arbitrary code from the file); with
    `frames_of` (windows (N, T, H, W, C)), check the model was trained on such frames."""
    from nextframe.errors import NextframeError

    if not Path(path).is_file():
        raise NextframeError(f"{path}: model file not found")
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:  # a corrupt archive fails in zipfile, h5py or Keras' config
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise NextframeError(f"{path}: cannot load the model ({reason})") from None
    if not isinstance(model, NextFramePredictor):
        raise NextframeError(f"{path}: not a nextframe model (got {type(model).__name__})")
    if frames_of is not None:
        from nextframe.domains import domain_of

        domain_of(model.frames).check_data(model.frames, tuple(frames_of.shape), path)
    return model
