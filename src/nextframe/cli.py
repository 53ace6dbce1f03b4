"""How stage scripts end: a user error is one line on stderr and exit 1, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

from nextframe.errors import NextframeError


def run(main: Callable[[], None]) -> None:
    try:
        main()
    except NextframeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
