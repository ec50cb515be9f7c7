"""Error types that the command line turns into one-line messages."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: the message is one line saying what was wrong and what is allowed.

    The CLI prints it without a traceback and exits with status 2.
    """


class RunFailed(Exception):
    """A run started but did not complete; its record was written with status ``failed``."""
