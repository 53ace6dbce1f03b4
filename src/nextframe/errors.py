"""The one exception type a user sees as a single line (see `nextframe.cli`)."""


class NextframeError(Exception):
    """A problem the user can act on: bad params, bad data, an unreachable URL."""
