"""The two layers hold: the core (params, data, model, training, rollout, metrics, rendering)
imports no ops module and neither MLflow, Gradio nor PostgreSQL's driver; only `nextframe.ops`
(tracking, registry, serving, predict, demo, server) does. The contracts are in pyproject.toml;
`make lint` checks them too."""

from __future__ import annotations

import shutil
import subprocess

from .helpers import BIN, REPO_ROOT


def test_the_layer_contracts_are_kept():
    result = subprocess.run(
        [str(BIN / "lint-imports")], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Contracts: 3 kept, 0 broken." in result.stdout


def test_a_core_module_importing_mlflow_or_ops_breaks_them(tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "src", copy / "src")
    shutil.copy2(REPO_ROOT / "pyproject.toml", copy / "pyproject.toml")
    metrics = copy / "src" / "nextframe" / "metrics.py"
    added = "\nimport mlflow\nfrom nextframe.ops import registry\n"
    metrics.write_text(metrics.read_text() + added)
    result = subprocess.run(
        [str(BIN / "lint-imports")],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(copy / "src"), "PATH": str(BIN)},
    )
    assert result.returncode != 0
    assert "nextframe.metrics -> mlflow" in result.stdout
    assert "nextframe.metrics -> nextframe.ops.registry" in result.stdout


def test_ops_importing_a_domains_module_breaks_them(tmp_path):
    """ops reaches a domain through `nextframe.domains` only (`get_method`, `get_part`)."""
    copy = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "src", copy / "src")
    shutil.copy2(REPO_ROOT / "pyproject.toml", copy / "pyproject.toml")
    predict = copy / "src" / "nextframe" / "ops" / "predict.py"
    predict.write_text(predict.read_text() + "\nfrom nextframe.domains.rain import render\n")
    result = subprocess.run(
        [str(BIN / "lint-imports")],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(copy / "src"), "PATH": str(BIN)},
    )
    assert result.returncode != 0
    assert "nextframe.ops.predict -> nextframe.domains.rain.render" in result.stdout
