"""Data parallel training on JAX (`keras.distribution.DataParallel`), checked on this CPU with
XLA's simulated host devices: two devices train to the same losses as one."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from .helpers import REPO_ROOT, clean_env, tiny_params

pytestmark = pytest.mark.integration

# Losses of a few steps of the train stage's setup (`build_trainer`: the devices, the trainer),
# on fixed clips, on however many devices XLA shows this process.
TRAIN_A_FEW_STEPS = """
import json, sys
import numpy as np
from nextframe.data.dataset import ClipBatches
from nextframe.params import parse_params
from nextframe.train import build_trainer

params = parse_params(json.loads(sys.argv[1]))
clips = np.random.default_rng(0).integers(0, 256, (16, 8, 64, 64, 1), dtype=np.uint8)
batches = ClipBatches(clips, params.train.batch_size, shuffle=True, seed=0, repeat=True)
training = build_trainer(params, total_steps=4)
with training.compute.scope():
    history = training.trainer.fit(batches, steps_per_epoch=2, epochs=2, verbose=0).history
print(json.dumps({"devices": training.compute.devices, "loss": history["loss"]}))
"""


def run_on_devices(script: str, n_devices: int, params: dict) -> str:
    """`script` on JAX with `n_devices` simulated CPU devices, given `params`: its stdout."""
    env = clean_env(
        KERAS_BACKEND="jax", XLA_FLAGS=f"--xla_force_host_platform_device_count={n_devices}"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(params)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def losses_on(n_devices: int, params: dict) -> dict:
    return json.loads(run_on_devices(TRAIN_A_FEW_STEPS, n_devices, params).strip().splitlines()[-1])


def test_two_devices_give_the_losses_of_one():
    params = tiny_params({"train": {"batch_size": 4}})
    one, two = losses_on(1, params), losses_on(2, params)
    assert one["devices"] == ["cpu:0"] and two["devices"] == ["cpu:0", "cpu:1"]
    # The same maths, summed in another order across devices: float32 round-off only.
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-5)


# The train stage's batches (`training_batches`) and fit, validation included, on 2 devices.
FIT_WITH_VALIDATION = """
import json, sys
import numpy as np
from nextframe.params import parse_params
from nextframe.train import build_trainer, training_batches

params = parse_params(json.loads(sys.argv[1]))
clips = np.random.default_rng(0).integers(0, 256, (9, 8, 64, 64, 1), dtype=np.uint8)
batches, val = training_batches(params, clips, None, clips)
training = build_trainer(params, total_steps=batches.batches_per_epoch)
with training.compute.scope():
    history = training.trainer.fit(
        batches, steps_per_epoch=batches.batches_per_epoch, validation_data=val, verbose=0
    ).history
print(json.dumps(history["val_loss"]))
"""


def test_a_last_batch_that_does_not_split_is_cut_to_one_that_does():
    """9 clips in batches of 4 end with a batch of 1, which 2 devices cannot share: it is left
    out (one printed note) instead of failing at the first validation."""
    stdout = run_on_devices(FIT_WITH_VALIDATION, 2, tiny_params({"train": {"batch_size": 4}}))
    assert "the last 1 of 9 validation clips" in stdout
    assert len(json.loads(stdout.strip().splitlines()[-1])) == 1


def test_a_batch_that_does_not_split_evenly_is_refused():
    script = (
        "import json, sys\n"
        "from nextframe.params import parse_params\n"
        "from nextframe.train import plan_compute\n"
        "plan_compute(parse_params(json.loads(sys.argv[1])).train)\n"
    )
    env = clean_env(KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    params = json.dumps(tiny_params({"train": {"batch_size": 3}}))
    result = subprocess.run(
        [sys.executable, "-c", script, params], env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "train.batch_size must be a multiple of the 2 visible devices" in result.stderr
