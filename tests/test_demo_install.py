"""The demo's Gradio stays out of the pipeline's install: `make repro` syncs requirements.lock,
`make demo` and `make test` add requirements-demo.lock, which pins the same versions plus
Gradio's packages (so adding it changes nothing the pipeline runs on)."""

from __future__ import annotations

import re
import subprocess

from .helpers import REPO_ROOT


def pins(name: str) -> dict[str, str]:
    text = (REPO_ROOT / name).read_text()
    return dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", text, flags=re.MULTILINE))


def dry_run(*args: str) -> str:
    return subprocess.run(
        ["make", "-n", "-B", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout


def test_the_demo_lock_is_the_pipeline_lock_plus_gradio():
    pipeline, demo = pins("requirements.lock"), pins("requirements-demo.lock")
    assert "gradio" in demo and "gradio" not in pipeline
    assert {name: demo.get(name) for name in pipeline} == pipeline, "re-lock with `make lock`"


def test_repro_leaves_gradio_out_and_demo_and_test_bring_it():
    assert "requirements-demo.lock" not in dry_run("repro")
    for target in ("demo", "test"):
        assert "pip install --compile-bytecode" in dry_run(target), target
        assert "-r requirements-demo.lock" in dry_run(target), target
