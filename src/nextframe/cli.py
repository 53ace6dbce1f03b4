"""How stage scripts start and end: their command line, and a user error as one line on
stderr with exit 1, never a traceback."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
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


# What TensorFlow's native code prints to stderr as it loads, whatever TF_CPP_MIN_LOG_LEVEL
# says (its absl logging starts before it reads the variable): notices, not problems.
_START_UP_NOTICES = (
    "absl::InitializeLog()",
    "oneDNN custom operations are on",
    "This TensorFlow binary is optimized",
    "Unable to register cu",
    "cuda drivers on your machine",
    "TF-TRT Warning",
)


@contextlib.contextmanager
def backend_notices_quieted() -> Iterator[None]:
    """Load the backend inside this block: its native start-up notices are dropped, anything
    else it writes to stderr is passed on once the block ends."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines()
            for line in lines:
                if not any(notice in line for notice in _START_UP_NOTICES):
                    print(line, file=sys.stderr)
