"""Text from records, options and plugins made safe to print or to put in a report.

Such strings are data, not markup: a record's ``error`` may hold terminal escape sequences, a
plugin's option a carriage return followed by a LaTeX command. :func:`printable` turns every
control character into a visible escape (``\\x1b``, ``\\r``, ``\\u2028``), so what reaches a
terminal or a report is one line of inert text; each format's own escaping comes on top.
"""

from __future__ import annotations

import unicodedata

#: Escapes for the common control characters; others become ``\\xNN`` / ``\\uNNNN``.
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def is_unsafe(ch: str) -> bool:
    """Control characters (C0, DEL, C1), line and paragraph separators, and format characters
    such as bidirectional overrides, which can make text display as something it is not."""
    return unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn") and ch != "\u200d"


def printable(value: object, *, keep_newlines: bool = False) -> str:
    """``str(value)`` with every unsafe character replaced by a visible escape.

    ``keep_newlines`` keeps ``\\n`` (for multi-line text such as a traceback shown on purpose).
    """
    text = str(value)
    if all(ch.isprintable() for ch in text):  # the common case: nothing to do
        return text
    return "".join(ch if (not is_unsafe(ch) or (keep_newlines and ch == "\n")) else _escape(ch) for ch in text)
