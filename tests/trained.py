"""The session's trained workdir (the `trained` fixture), built in its own process:
`python -m tests.trained HOME` runs every stage with the tiny params in HOME/work, then
writes HOME/built, or HOME/failed with the reason."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from . import helpers


def build_trained(workdir: Path) -> None:
    helpers.write_params(workdir, helpers.tiny_params())
    shutil.copy2(helpers.REPO_ROOT / "dvc.yaml", workdir)  # where predict and the demo look
    for stage in ("fetch", "preprocess", "train", "evaluate", "render"):
        reads = str(workdir / f"reads-{stage}.json")
        result = helpers.run_stage(stage, workdir, NEXTFRAME_PARAMS_READS=reads)
        if result.returncode != 0:
            raise RuntimeError(f"{stage}: {result.stderr[-3000:]}")


def main(home: Path) -> None:
    try:
        build_trained(home / "work")
    except BaseException as exc:
        (home / "failed").write_text(f"{type(exc).__name__}: {exc}")
        raise
    (home / "built").touch()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
