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


def lint_with_lines_added(tmp_path, module: str, lines: str) -> subprocess.CompletedProcess:
    """`lint-imports` on a copy of the package whose `module` (a path under src/nextframe)
    has `lines` added."""
    copy = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "src", copy / "src")
    shutil.copy2(REPO_ROOT / "pyproject.toml", copy / "pyproject.toml")
    edited = copy / "src" / "nextframe" / module
    edited.write_text(edited.read_text() + lines)
    return subprocess.run(
        [str(BIN / "lint-imports")],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(copy / "src"), "PATH": str(BIN)},
    )


def test_a_core_module_importing_mlflow_or_ops_breaks_them(tmp_path):
    added = "\nimport mlflow\nfrom nextframe.ops import registry\n"
    result = lint_with_lines_added(tmp_path, "metrics.py", added)
    assert result.returncode != 0
    assert "nextframe.metrics -> mlflow" in result.stdout
    assert "nextframe.metrics -> nextframe.ops.registry" in result.stdout


def test_ops_importing_a_domains_module_breaks_them(tmp_path):
    """ops reaches a domain through `nextframe.domains` only (`get_method`, `get_part`)."""
    added = "\nfrom nextframe.domains.rain import render\n"
    result = lint_with_lines_added(tmp_path, "ops/predict.py", added)
    assert result.returncode != 0
    assert "nextframe.ops.predict -> nextframe.domains.rain.render" in result.stdout
