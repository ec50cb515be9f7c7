"""Which code produced a record: the git commit of clbench's source, when it runs from a checkout.

A record's ``versions`` names clbench's release, which does not change from commit to commit; a
researcher running from a clone (``pip install -e .``) changes the code between runs. When the
installed ``clbench`` package sits at the top of a git work tree (its parent folder holds
``.git``), records also carry ``versions.commit``: that tree's ``HEAD``, with ``+dirty`` when
tracked files (outside ``results/``) differ from it. A regular (non-editable) install has no
commit to give.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

#: Appended to the commit when tracked files differ from it.
DIRTY = "+dirty"
#: A checkout's folder of committed results (records, reports): data, not code, so changes there
#: do not make the code dirty.
DATA_FOLDER = "results"


def package_root() -> Path:
    """The folder that holds the ``clbench`` package (a checkout's root for an editable install)."""
    import clbench

    return Path(clbench.__file__).resolve().parent.parent


def commit_of(root: Path) -> str | None:
    """``HEAD`` of the git work tree whose top is ``root`` (``SHA`` or ``SHA+dirty``), or None when
    ``root`` is not the top of one, git is missing or fails. Untracked files do not make it dirty."""
    if not (root / ".git").exists():  # a folder, or a file in a worktree or submodule
        return None
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}  # the tree at root, not $GIT_DIR's
    try:

        def git(*args: str) -> str:
            command = ["git", "--no-optional-locks", "-C", str(root), *args]  # never holds index.lock
            done = subprocess.run(command, capture_output=True, text=True, timeout=10, env=env, check=True)
            return done.stdout.strip()

        sha = git("rev-parse", "--verify", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", f":(exclude){DATA_FOLDER}")
    except (OSError, subprocess.SubprocessError):
        return None
    if len(sha) < 40 or any(c not in "0123456789abcdef" for c in sha):
        return None
    return sha + (DIRTY if dirty else "")


@functools.lru_cache(maxsize=1)
def source_commit() -> str | None:
    """:func:`commit_of` clbench's own checkout, looked up once per process (the code a process
    runs is the code it imported at its start). The local sweep pool's fork server looks it up
    when it starts (:mod:`clbench.worker_preload`), so every worker names the commit of the
    sweep's start; a Ray worker looks it up at its first run."""
    return commit_of(package_root())
