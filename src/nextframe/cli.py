"""How stage scripts start and end: their command line, and a user error as one line on
stderr with exit 1, never a traceback."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from nextframe.errors import NextframeError


def stage_args(description: str, **paths: str | tuple[str, str]) -> argparse.Namespace:
    """`--params` and one path option per keyword (`run_info` -> `--run-info`), each defaulting
    to where dvc.yaml puts it; a (default, help) pair adds a help line."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml")
    for name, spec in paths.items():
        default, help_text = spec if isinstance(spec, tuple) else (spec, None)
        parser.add_argument(
            f"--{name.replace('_', '-')}", default=default, type=Path, help=help_text
        )
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
