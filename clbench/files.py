"""Files clbench reads and writes, made safe against careless and hostile input.

- :func:`write_text_atomic`: a temp file in the same folder, fsync, rename; created with mode
  0666 less the umask (as any file a user's tools create), removed if anything fails.
- :func:`read_text_safely`: reads only regular files (a FIFO, a device or a socket at the path is
  refused at once, never waited on), up to a size limit, as UTF-8.
- :func:`folder_lock`: an exclusive lock on a folder (``flock`` on the folder itself: no lock file
  is left behind), so that check-then-write steps of concurrent processes do not interleave.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

#: Files larger than this are not read (a record is a few kB to a few MB).
MAX_READ_BYTES = 256 * 1024 * 1024


class UnsafeFile(OSError):
    """A path that clbench refuses to read: not a regular file, or too large. One-line message."""


def temp_name(path: Path, kind: str = "tmp") -> Path:
    """A hidden sibling of ``path`` that clbench recognises as its own temporary file."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.{kind}")


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temp file in the same folder and a rename.

    A reader sees the old file or the new one, never half of either; on any failure (serialisation,
    full disk, a signal) the temp file is removed and the old file is left as it was.
    """
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, as :func:`write_text_atomic` does."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
        except FileNotFoundError:  # the folder was removed meanwhile (an empty checkpoints folder): once more
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_text_safely(path: str | Path, limit: int = MAX_READ_BYTES) -> str:
    """The UTF-8 text of the regular file at ``path``.

    Raises :class:`UnsafeFile` for a FIFO, device, socket or folder (checked on the opened file,
    opened without blocking) or a file over ``limit`` bytes; ``OSError`` and ``UnicodeDecodeError``
    as reading does.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(f"{str(path)!r} is not a regular file")
        if info.st_size > limit:
            raise UnsafeFile(f"{str(path)!r} is larger than {limit // (1024 * 1024)} MiB")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        with os.fdopen(fd, "rb") as fh:
            fd = -1
            data = fh.read(limit + 1)
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > limit:
        raise UnsafeFile(f"{str(path)!r} is larger than {limit // (1024 * 1024)} MiB")
    return data.decode("utf-8")


def is_regular_file(path: str | Path) -> bool:
    """True for a regular file (following links); False for anything else, without opening it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def folder_lock(folder: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (which must exist) for the ``with`` block.

    Uses ``flock`` on the folder's own descriptor, so nothing is created; where ``fcntl`` is
    missing (Windows) the block runs unlocked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
