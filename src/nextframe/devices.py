"""Which devices compute: named for logs, MLflow tags and the benchmarks."""

from __future__ import annotations

import keras


def describe_devices(devices: list[str]) -> str:
    """ "1 x NVIDIA H200 (gpu)", "2 x cpu": how many devices, and their model where JAX runs
    (Keras names only their kind)."""
    kind = devices[0].split(":")[0]
    name = kind
    if keras.backend.backend() == "jax":
        import jax

        name = jax.devices(kind)[0].device_kind
        name = kind if name == kind else f"{name} ({kind})"
    return f"{len(devices)} x {name}"
