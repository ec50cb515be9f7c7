"""Telling the user's own interrupt apart from code that raises ``KeyboardInterrupt``.

A plugin hook, a model or a strategy that raises ``SystemExit``, ``KeyboardInterrupt`` or
``GeneratorExit`` must not end a run silently: such an error is recorded like any other. Only a
real SIGINT (Ctrl-C) or SIGTERM stops a run. The command line installs :func:`install_handlers`,
whose handlers raise :class:`Interrupted`; code that contains errors asks :func:`interrupt_in`.
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
        #: What the interrupted work kept and how to go on (set by the harness), for the user.
        self.note: str | None = None

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


def interrupt_in(exc: BaseException) -> BaseException | None:
    """The user's interrupt that ``exc`` is or was caused by, else None: an :class:`Interrupted`,
    or any ``KeyboardInterrupt`` where clbench's handlers are not installed (library use, where
    Ctrl-C raises the plain one). Python wraps an interrupt raised during a class definition in a
    ``RuntimeError``, for example: the chain of causes is searched."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, Interrupted) or (isinstance(current, KeyboardInterrupt) and not _installed):
            return current
        current = current.__cause__ or current.__context__
    return None


def reraise_interrupt(exc: BaseException) -> None:
    """Raise the user's interrupt behind ``exc``, if there is one; otherwise return."""
    found = interrupt_in(exc)
    if found is not None:
        raise found
