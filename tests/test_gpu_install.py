"""The GPU install path (`make repro GPU=1`): its lock resolves for Linux x86_64 from the
package index, holds JAX's CUDA build and not TensorFlow, with the CPU lock's Keras."""

from __future__ import annotations

import re
import subprocess

import pytest

from .helpers import BIN, REPO_ROOT, require_package_index, run

pytestmark = pytest.mark.integration

LINUX = ["--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28"]


def pins(lock_text: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", lock_text, flags=re.MULTILINE))


@pytest.fixture(scope="module")
def resolved_now(tmp_path_factory) -> dict[str, str]:
    """The GPU extra resolved afresh from the index, as `make lock` does."""
    require_package_index()
    out = tmp_path_factory.mktemp("lock") / "gpu.lock"
    command = [str(BIN / "uv"), "pip", "compile", "pyproject.toml", "--extra", "gpu"]
    run([*command, "--extra", "dev", *LINUX, "-o", str(out), "--quiet"], REPO_ROOT, timeout=300)
    return pins(out.read_text())


def test_gpu_extra_resolves_to_jax_cuda_without_tensorflow(resolved_now):
    assert "jax-cuda12-plugin" in resolved_now and "jax-cuda12-pjrt" in resolved_now
    assert resolved_now["jax-cuda12-plugin"] == resolved_now["jax"] == resolved_now["jaxlib"]
    assert not any(name.startswith("tensorflow") for name in resolved_now)


def test_committed_gpu_lock_matches_the_cpu_lock_where_they_share_packages(resolved_now):
    gpu = pins((REPO_ROOT / "requirements-gpu.lock").read_text())
    cpu = pins((REPO_ROOT / "requirements.lock").read_text())
    assert gpu.keys() == resolved_now.keys(), "re-lock with `make lock`"
    assert not any(name.startswith("tensorflow") for name in gpu)
    for name in ("keras", "mlflow", "dvc", "numpy", "jax"):
        assert gpu[name] == cpu[name], name


def test_gpu_flag_picks_the_gpu_environment_and_jax():
    dry_run = subprocess.run(
        ["make", "-n", "repro", "GPU=1"], cwd=REPO_ROOT, capture_output=True, text=True
    ).stdout
    assert "requirements-gpu.lock" in dry_run and ".venv-gpu/bin/dvc repro" in dry_run
    database = subprocess.run(
        ["make", "-pn", "repro", "GPU=1"], cwd=REPO_ROOT, capture_output=True, text=True
    ).stdout
    assert re.search(r"^KERAS_BACKEND \??= jax$", database, flags=re.MULTILINE), "exported"
