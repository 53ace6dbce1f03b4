"""How stage scripts start and end: their command line, and a user error as one line on
stderr with exit 1, never a traceback."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from nextframe.errors import NextframeError


def stage_args(description: str, *paths: str) -> argparse.Namespace:
    """One required path option per name (`run_info` -> `--run-info`), `--params` included:
    dvc.yaml passes every path from its `vars`, so none is written again here as a default."""
    parser = argparse.ArgumentParser(description=description)
    for name in paths:
        parser.add_argument(f"--{name.replace('_', '-')}", required=True, type=Path)
    return parser.parse_args()


def _exit_on_sigterm(signum, frame) -> None:
    # SystemExit unwinds like any exception, so an open MLflow run is ended FAILED.
    raise SystemExit(128 + signum)


def run(main: Callable[[], None]) -> None:
    """Call `main`; print a NextframeError as one line and exit 1."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        main()
    except NextframeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
