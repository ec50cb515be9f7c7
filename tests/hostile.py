"""Helpers of the hostile-input tests: the real console script in a subprocess, folder snapshots,
tiny plugins written to a temp folder, and the processes a command left behind."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

from tests.helpers import tiny_flags

#: The installed console script (what users run; ``python -m`` would put the current folder on sys.path).
CLBENCH = str(Path(sys.executable).with_name("clbench"))
SMALL = tiny_flags(2)


def env_with(pythonpath: Path | None = None, **extra: str) -> dict[str, str]:
    """The test's environment, plus a plugin folder on PYTHONPATH and a marker to find children by."""
    env = dict(os.environ)
    env.pop("CLBENCH_DISABLE_PLUGINS", None)
    env["CLBENCH_TEST_MARK"] = extra.pop("mark", "none")
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(pythonpath), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def clb(
    *args: str, cwd: Path, pythonpath: Path | None = None, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess:
    """Run the ``clbench`` console script with ``args`` in ``cwd``; capture its output."""
    return subprocess.run(
        [CLBENCH, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=env_with(pythonpath, **env),
        stdin=subprocess.DEVNULL,
    )


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every entry below ``folder`` (hidden ones included): relative path -> (size, mtime_ns)."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            info = path.lstat()
            out[str(path.relative_to(folder))] = (info.st_size if not path.is_dir() else 0, info.st_mtime_ns)
    return out


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit status 2, one line ``clbench: error: ...`` on stderr, no traceback."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("clbench: error: "), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def write_plugin(folder: Path, name: str, body: str) -> str:
    """Write module ``name`` (a tiny plugin) into ``folder``; return its module name for ``--plugin``."""
    folder.mkdir(parents=True, exist_ok=True)
    header = "from clbench import hookimpl, Options\n"
    (folder / f"{name}.py").write_text(header + textwrap.dedent(body), encoding="utf-8")
    return name


def new_mark() -> str:
    """A unique value for CLBENCH_TEST_MARK, to find a command's processes."""
    return uuid.uuid4().hex


def marked_processes(mark: str) -> list[int]:
    """Live processes (not zombies) whose environment holds ``CLBENCH_TEST_MARK=mark``."""
    needle = f"CLBENCH_TEST_MARK={mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(entry.name))
    return found


def wait_until(predicate: Any, timeout: float, step: float = 0.1) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return bool(value)
        time.sleep(step)


def leftovers(folder: Path) -> list[str]:
    """clbench's temporary files and folders below ``folder`` (``.name.<hex>.tmp`` / ``.old``)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*") if p.name.endswith((".tmp", ".old")))
