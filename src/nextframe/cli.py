"""How stage scripts end: a user error is one line on stderr and exit 1, never a traceback."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

from nextframe.errors import NextframeError


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
