"""A git copy of this repo with tiny params, and the real `dvc`/`git` run inside it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from ..conftest import REPO_ROOT, merge, tiny_overrides

BIN = Path(sys.executable).parent


def env(**extra: str) -> dict[str, str]:
    """This environment without DVC's or MLflow's variables, the venv first on PATH."""
    out = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "MLFLOW_"))}
    out["PATH"] = f"{BIN}{os.pathsep}{out['PATH']}"
    out["PYTHONUNBUFFERED"] = "1"
    return out | extra


def run(
    args: list[str], cwd: Path, check: bool = True, **extra_env: str
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        args, cwd=cwd, env=env(**extra_env), capture_output=True, text=True, timeout=900
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def git_commit(repo: Path, message: str) -> None:
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message], repo)


def tiny_copy(repo: Path) -> Path:
    """This repo's tracked and new files in `repo`, with tiny params, committed to git."""
    files = run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], REPO_ROOT
    ).stdout.split()
    for name in files:
        if (REPO_ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, repo / name)
    params = merge(yaml.safe_load((repo / "params.yaml").read_text()), tiny_overrides())
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], repo)
    git_commit(repo, "tiny copy")
    return repo
