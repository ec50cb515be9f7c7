"""Telling the user's own interrupt apart from code that raises ``KeyboardInterrupt``.

A plugin hook, a model or a strategy that raises ``SystemExit``, ``KeyboardInterrupt`` or
``GeneratorExit`` must not end a run silently: such an error is recorded like any other. Only a
real SIGINT (Ctrl-C) or SIGTERM stops a run. The command line installs :func:`install_handlers`,
whose handlers raise :class:`Interrupted`; code that contains errors asks :func:`is_user_interrupt`.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


class Interrupted(KeyboardInterrupt):
    """Raised by clbench's signal handlers: the user (or the system) asked this process to stop."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


_installed = False


def _handler(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


def install_handlers() -> None:
    """Turn SIGINT and SIGTERM into :class:`Interrupted` in this process (main thread only)."""
    global _installed
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    _installed = True


def is_user_interrupt(exc: BaseException) -> bool:
    """True when ``exc`` means "stop": an :class:`Interrupted`, or any ``KeyboardInterrupt`` where
    clbench's handlers are not installed (library use, where Ctrl-C raises the plain one)."""
    if isinstance(exc, Interrupted):
        return True
    return isinstance(exc, KeyboardInterrupt) and not _installed
