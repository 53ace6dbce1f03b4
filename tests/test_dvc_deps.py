"""`dvc.yaml` tells the whole story: every package file a stage imports is a dep of it.

Otherwise editing that file leaves `dvc repro` reporting "up to date" over stale outputs.
The imports are derived from the code with `ast` (transitively, lazy imports included).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from .helpers import REPO_ROOT

PACKAGE = "nextframe"
# Modules that only shape how errors are reported, never what a stage writes.
EXEMPT = {
    "src/nextframe/data/__init__.py",  # a docstring
    "src/nextframe/cli.py",  # prints errors as one line
    "src/nextframe/errors.py",  # the exception type
}


def module_file(module: str) -> Path | None:
    """The source file of a `nextframe.*` module, or None for anything outside the package."""
    if module.split(".")[0] != PACKAGE:
        return None
    base = REPO_ROOT / "src" / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Every module an `import` anywhere in the file may load, relative imports resolved."""
    src = REPO_ROOT / "src"
    package = ".".join(path.relative_to(src).parent.parts) if path.is_relative_to(src) else ""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # submodules
    # `import a.b.c` loads a and a.b too (their __init__ files run).
    return {".".join(m.split(".")[:i]) for m in found for i in range(1, m.count(".") + 2)}


def package_files(script: Path) -> set[str]:
    """Repo-relative paths of the package files `script` imports, transitively."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        for module in imported_modules(path):
            file = module_file(module)
            if file is not None and file not in seen:
                seen.add(file)
                todo.append(file)
    return {str(p.relative_to(REPO_ROOT)) for p in seen}


def stages() -> dict[str, dict]:
    return yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]


def stage_script(stage: dict) -> Path:
    (script,) = re.findall(r"\bstages/\w+\.py\b", stage["cmd"])
    return REPO_ROOT / script


def declared(stage: dict) -> set[str]:
    return {next(iter(d)) if isinstance(d, dict) else d for d in stage.get("deps", [])}


@pytest.mark.parametrize("name", sorted(stages()))
def test_every_imported_package_file_is_a_dep(name):
    stage = stages()[name]
    script = stage_script(stage)
    deps = declared(stage)
    assert str(script.relative_to(REPO_ROOT)) in deps
    missing = sorted(package_files(script) - EXEMPT - deps)
    assert not missing, f"stage {name} imports {missing}: add them to its deps in dvc.yaml"


def test_the_import_walk_follows_lazy_and_transitive_imports():
    files = package_files(REPO_ROOT / "stages" / "train.py")
    assert "src/nextframe/train.py" in files  # imported inside main()
    assert "src/nextframe/io.py" in files  # imported by the package, not the stage
