"""Run records: plain JSON files written atomically (temp file + rename), never pickle."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from clbench.errors import UserError

SCHEMA_VERSION = 1
DEFAULT_RESULTS = Path("results")


def runs_dir(results: str | Path) -> Path:
    """The folder holding run records inside a results folder."""
    return Path(results) / "runs"


def record_path(results: str | Path, run_id: str) -> Path:
    """Where the record of ``run_id`` lives."""
    return runs_dir(results) / f"{run_id}.json"


def write_atomic(path: str | Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as JSON to ``path`` via a temp file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=False, allow_nan=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def read_record(path: str | Path) -> dict[str, Any] | None:
    """The record at ``path``, or None when it is missing or not a complete record."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "run_id" not in data or "status" not in data:
        return None
    return data


def is_complete(path: str | Path) -> bool:
    """True when ``path`` holds a record that finished with status ok."""
    data = read_record(path)
    return data is not None and data.get("status") == "ok"


def find_record(results: str | Path, run_id: str) -> Path:
    """Resolve a run id (or a unique prefix of one) to its record file; UserError if none/ambiguous."""
    folder = runs_dir(results)
    exact = folder / f"{run_id}.json"
    if exact.exists():
        return exact
    if not run_id or not all(c in "0123456789abcdef" for c in run_id):
        raise UserError(f"bad run id {run_id!r}: expected hex digits as printed by 'clbench run'")
    matches = sorted(folder.glob(f"{run_id}*.json")) if folder.is_dir() else []
    if not matches:
        raise UserError(f"no record for run id {run_id!r} in {str(folder)!r}")
    if len(matches) > 1:
        ids = ", ".join(m.stem for m in matches[:5])
        raise UserError(f"run id prefix {run_id!r} is ambiguous: {ids}")
    return matches[0]
