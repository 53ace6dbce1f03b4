"""Where the pipeline keeps its files: the `paths` of dvc.yaml's `vars`, the one place they are
written, read here so that `nextframe predict` and the demo default to the pipeline's model
and test split."""

from __future__ import annotations

from pathlib import Path

import yaml


def pipeline_path(name: str, root: Path | None = None) -> Path | None:
    """`paths.<name>` of dvc.yaml in `root` (default: the working directory), relative to it;
    None where there is no such dvc.yaml or path."""
    root = Path.cwd() if root is None else root
    try:
        pipeline = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    for entry in (pipeline or {}).get("vars", []):
        if isinstance(entry, dict) and isinstance(entry.get("paths"), dict):
            value = entry["paths"].get(name)
            return None if value is None else root / value
    return None
