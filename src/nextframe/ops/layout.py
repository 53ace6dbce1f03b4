"""Where the pipeline keeps its files and how it runs its stages: dvc.yaml, read here so that
`nextframe predict` and the demo default to the pipeline's model and test split, and the
benchmarks and tests run a stage with the very command DVC runs.

Paths are written once, in dvc.yaml's `vars` (`paths`); `${...}` in a stage is filled as DVC
fills it, from those vars and then from params.yaml.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml


def _pipeline(root: Path) -> dict[str, Any] | None:
    try:
        return yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None


def _vars(pipeline: dict[str, Any]) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for entry in pipeline.get("vars", []):
        if isinstance(entry, dict):
            context |= entry
    return context


def pipeline_path(name: str, root: Path | None = None) -> Path | None:
    """`paths.<name>` of dvc.yaml in `root` (default: the working directory), as written
    there (relative to the repo); None where there is no such dvc.yaml or path."""
    pipeline = _pipeline(Path.cwd() if root is None else root)
    value = _vars(pipeline).get("paths", {}).get(name) if pipeline is not None else None
    return None if value is None else Path(value)


def stage_command(name: str, root: Path, workdir: Path) -> list[str]:
    """Stage `name` of `root`'s dvc.yaml as DVC runs it in `workdir` (whose params.yaml fills
    the templates), by this interpreter, with `root`'s stage script."""
    pipeline = _pipeline(root)
    if pipeline is None:
        raise FileNotFoundError(root / "dvc.yaml")
    context = _vars(pipeline) | (yaml.safe_load((workdir / "params.yaml").read_text()) or {})

    def value(match: re.Match) -> str:
        found: Any = context
        for part in match[1].split("."):
            found = found[part]
        return str(found)

    cmd = re.sub(r"\$\{([\w.]+)\}", value, pipeline["stages"][name]["cmd"])
    _python, script, *args = shlex.split(cmd)
    return [sys.executable, str(root / script), *args]
