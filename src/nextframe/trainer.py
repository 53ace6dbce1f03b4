"""The training step: what `fit` trains. A batch of clips becomes the model's values (by its
domain), the context is read with the truth given, the rest is rolled out closed loop (with
scheduled sampling early in training), and every prediction is scored against the next frame
by the domain's loss. Devices, precision, resume, the cluster and tracking are kept around it,
in `nextframe.train` and the train stage."""

from __future__ import annotations

import keras
from keras import ops

from nextframe.domains import domain_of
from nextframe.model import NextFramePredictor


@keras.saving.register_keras_serializable(package="nextframe")
def l1_plus_l2(y_true, y_pred):
    """Mean absolute plus mean squared error: sharper than MSE alone on sparse digits."""
    error = y_pred - y_true
    return ops.mean(ops.abs(error), axis=-1) + ops.mean(ops.square(error), axis=-1)


LOSSES = {"bce": "binary_crossentropy", "mse": "mean_squared_error", "l1+l2": l1_plus_l2}


class SequenceTrainer(keras.Model):
    """What `fit` trains: from a batch of clips (made the model's values by their domain,
    `nextframe.domains`), predictions of frames 1..T-1 from frames 0..T-2, each scored against
    the next frame by the domain's loss (radar: masked where there is no data).

    Context steps are always teacher-forced (the truth is given); after the context,
    `closed_loop` feeds back the model's own predictions, as at evaluation, while
    `teacher_forcing` keeps reading the truth (the keras-io example's regime). Both train
    the same predictor's weights; only the predictor is saved. Batches carry no separate
    targets: they are the clip's own later frames (`compute_loss`).

    With `truth_decay_steps` (scheduled sampling), each clip's step after the context reads
    the true frame instead of its own prediction with a chance that falls from 1 at the first
    training step to 0 at that step: early training learns one-step motion as teacher forcing
    does, and the rest of it learns to roll out, as evaluation does. The step count is the
    trainer's own weight (advanced in `call`, saved in backups): on JAX a step reads no
    optimizer variable, and a resumed run goes on where the schedule and its draws were.
    """

    def __init__(
        self,
        predictor: NextFramePredictor,
        n_context: int,
        feedback: str,
        loss_kind: str = "bce",
        truth_decay_steps: int = 0,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.predictor = predictor
        self.n_context = n_context
        self.feedback = feedback
        self.frame_size = predictor.frames.size
        self.domain = domain_of(predictor.frames)  # how a batch becomes values, and the loss
        self.loss_kind = loss_kind
        self.truth_decay_steps = truth_decay_steps if feedback == "closed_loop" else 0
        if self.truth_decay_steps:
            self.sampled_steps = self.add_weight(
                shape=(),
                initializer="zeros",
                dtype="float32",
                trainable=False,
                name="sampled_steps",
            )
            self.sampling_seed_base = seed
            self.sampling_seed = keras.random.SeedGenerator(seed, name="sampling_seed")

    def build(self, input_shape=None):
        # Built once the predictor is (BackupAndRestore checks); its only weight of its own is
        # scheduled sampling's step count.
        if not self.predictor.built:
            self.predictor.build((None, None, *self.predictor.frames.shape))
        self.built = True

    def call(self, batch, training=None):
        frames = self.domain.batch_values(batch, self.frame_size)[:, :-1]
        if self.feedback == "teacher_forcing":
            return self.predictor.encode(frames, training=training)[0]
        context_predictions, states = self.predictor.encode(
            frames[:, : self.n_context], training=training
        )
        n_future = frames.shape[1] - self.n_context
        if training and self.truth_decay_steps:
            future = self._scheduled_rollout(frames, context_predictions[:, -1], states, training)
        else:
            future = self.predictor.continue_rollout(
                context_predictions[:, -1], states, n_future, training=training
            )
        return ops.concatenate([context_predictions, future], axis=1)

    def _scheduled_rollout(self, frames, first, states, training):
        """The steps after the context, each clip fed the true frame (the input frames after
        the context) with this step's chance, else its own last prediction."""
        step = self.sampled_steps.value
        chance = ops.clip(1.0 - step / self.truth_decay_steps, 0.0, 1.0)
        # The draws of a step follow from the step count alone (Keras saves no seed state in
        # weights): a run resumed from a backup draws what the uninterrupted one drew.
        state = self.sampling_seed.state
        state.assign(ops.cast(ops.stack([step, float(self.sampling_seed_base)]), state.dtype))
        self.sampled_steps.assign_add(1.0)
        frame, future = first, []
        for t in range(frames.shape[1] - self.n_context):
            truth = frames[:, self.n_context + t]
            draw = keras.random.uniform((ops.shape(truth)[0], 1, 1, 1), seed=self.sampling_seed)
            fed = ops.where(draw < chance, truth, frame)
            frame, states = self.predictor.step(fed, states, training=training)
            future.append(frame)
        return ops.stack(future, axis=1)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = self.domain.loss(self.loss_kind, x, y_pred, self.predictor.frames)
        if loss is not None:
            return loss
        targets = self.domain.batch_values(x, self.frame_size)[:, 1:]
        return super().compute_loss(x, targets, y_pred, sample_weight, training=training)
