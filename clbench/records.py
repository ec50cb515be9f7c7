"""Run records: plain, strict JSON files (no NaN or Infinity tokens), written atomically, never pickle.

Every place that reads a record goes through :func:`load_record`, which never blocks (a FIFO at a
record path is refused), never raises on bad content (unreadable, not JSON, nested too deeply,
wrong shape, a schema version this clbench does not know) and says why a file was refused.
Every place that writes one goes through :func:`save_record`, which holds a lock on the records
folder from the check to the rename, so that a failed record never replaces a complete one, even
when identical runs finish at the same time.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clbench.errors import UserError
from clbench.files import UnsafeFile, folder_lock, is_regular_file, read_text_safely, temp_name, write_text_atomic
from clbench.text import printable

#: The record layout this clbench writes; records of versions 1..SCHEMA_VERSION are read.
SCHEMA_VERSION = 1
#: Statuses of a record; only ``ok`` is complete.
STATUSES = ("ok", "failed", "interrupted", "running")
RUN_ID = re.compile(r"^[0-9a-f]{16}$")
RUN_ID_PREFIX = re.compile(r"^[0-9a-f]{1,16}$")


def runs_dir(results: str | Path) -> Path:
    """The folder holding run records inside a results folder."""
    return Path(results) / "runs"


def record_path(results: str | Path, run_id: str) -> Path:
    """Where the record of ``run_id`` lives."""
    return runs_dir(results) / f"{run_id}.json"


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, +-Infinity) replaced by None, recursively:
    what strict JSON can hold. Tuples become lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def dumps(data: Any, indent: int | None = 1) -> str:
    """Strict JSON text of ``data`` (non-finite floats as null)."""
    return json.dumps(strict_json(data), indent=indent, allow_nan=False)


def write_atomic(path: str | Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as strict JSON to ``path`` (temp file in the same folder + rename).

    Serialisation happens before any file is touched: an unserialisable record leaves the old
    file as it was.
    """
    return write_text_atomic(path, dumps(data) + "\n")


def _no_constants(token: str) -> None:
    return None  # NaN / Infinity in a legacy record: a missing value


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_matrix(value: Any) -> bool:
    """A non-empty square list of lists of numbers."""
    if not isinstance(value, list) or not value:
        return False
    return all(isinstance(row, list) and len(row) == len(value) and all(_is_number(x) for x in row) for row in value)


def check_record(data: Any) -> str | None:
    """Why ``data`` is not a usable record (one short phrase), or None when it is.

    Checked: a JSON object with a known ``schema_version``, a 16-hex ``run_id``, a known
    ``status``, a ``config`` object and an integer seed; an ``ok`` record must also hold a square
    accuracy matrix, ``init_accuracy`` of the same length, and metrics that are numbers or null.
    """
    if not isinstance(data, dict):
        return "not a JSON object"
    for key in ("run_id", "status", "config"):
        if key not in data:
            return f"no {key!r} (not a clbench record, or a partial one)"
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return f"bad schema_version {version!r}"
    if version > SCHEMA_VERSION:
        return f"schema_version {version} is newer than this clbench reads ({SCHEMA_VERSION}); upgrade clbench"
    if not isinstance(data["run_id"], str) or not RUN_ID.match(data["run_id"]):
        return f"bad run_id {data['run_id']!r}"
    status = data["status"]
    if status not in STATUSES:
        return f"unknown status {status!r}"
    if not isinstance(data["config"], dict):
        return "'config' is not an object"
    seed = data.get("seed", data["config"].get("seed"))
    if not isinstance(seed, int) or isinstance(seed, bool):
        return f"bad seed {seed!r}"
    if status == "ok":
        if not _is_matrix(data.get("accuracy_matrix")):
            return "status ok but the accuracy matrix is missing or not square"
        init = data.get("init_accuracy")
        if not isinstance(init, list) or len(init) != len(data["accuracy_matrix"]) or not all(map(_is_number, init)):
            return "status ok but init_accuracy is missing or does not match the matrix"
        for name in ("metrics", "adapted_metrics"):
            block = data.get(name)
            if block is None and name == "adapted_metrics":
                continue
            if not isinstance(block, dict) or (name == "metrics" and not block):
                return f"status ok but {name!r} is missing or empty"
            for key, value in block.items():
                if value is not None and not _is_number(value):
                    return f"{name}.{key} is not a number"
    elif data.get("error") is not None and not isinstance(data.get("error"), str):
        return "'error' is not a string"
    return None


def load_record(path: str | Path) -> tuple[dict[str, Any] | None, str | None]:
    """``(record, None)`` for a usable record at ``path``; ``(None, reason)`` otherwise.

    The reason is ``"missing"`` when there is no file. Never blocks and never raises on content.
    """
    try:
        text = read_text_safely(path)
    except FileNotFoundError:
        return None, "missing"
    except UnsafeFile as exc:
        return None, str(exc).replace(f"{str(path)!r} is ", "")
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"unreadable: {exc}"
    try:
        data = json.loads(text, parse_constant=_no_constants)
    except RecursionError:
        return None, "not a record: JSON nested too deeply"
    except ValueError as exc:
        return None, f"not valid JSON (partial file?): {exc}"
    reason = check_record(data)
    if reason is not None:
        return None, reason
    data.setdefault("seed", data["config"].get("seed"))
    return data, None


def read_record(path: str | Path) -> dict[str, Any] | None:
    """The usable record at ``path``, or None (missing, unreadable or malformed)."""
    return load_record(path)[0]


def is_complete(path: str | Path) -> bool:
    """True when ``path`` holds a usable record that finished with status ok."""
    data = read_record(path)
    return data is not None and data.get("status") == "ok"


@dataclass
class Saved:
    """What :func:`save_record` did: the path written (None: not written) and why not."""

    path: Path | None
    note: str | None = None


def save_record(results: str | Path, record: dict[str, Any]) -> Saved:
    """Write ``record`` to its place under ``results``, unless that would replace a complete
    record with one that is not complete. The check and the write happen under one lock on the
    records folder, so concurrent writers (two identical runs, a run and a sweep) cannot interleave.
    """
    path = record_path(results, record["run_id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    text = dumps(record) + "\n"  # serialise before taking the lock or touching a file
    with folder_lock(path.parent):
        if record.get("status") != "ok":
            existing, _ = load_record(path)
            if existing is not None and existing.get("status") == "ok":
                return Saved(None, f"not written: a complete record already exists at {path}")
        write_text_atomic(path, text)
    return Saved(path)


def check_writable(results: str | Path) -> None:
    """Make sure records can be written under ``results``, before any training: a one-line
    :class:`UserError` says what is wrong otherwise. Folders it had to create to find out are
    removed again, so that a run stopped by a later error leaves nothing behind."""
    runs = runs_dir(results)
    created = [p for p in (runs, *runs.parents) if not p.exists()]
    try:
        runs.mkdir(parents=True, exist_ok=True)
        probe = temp_name(runs / "write-check")
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UserError(f"cannot write records to {printable(runs)!r}: {reason}; choose another --results") from None
    finally:
        for folder in created:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                pass


def find_record(results: str | Path, run_id: str) -> Path:
    """Resolve a run id (or a unique prefix of one) to its record file in ``results/runs``.

    Only run ids are accepted, never paths: UserError for anything else, or if none or several match.
    """
    if not RUN_ID_PREFIX.match(run_id or ""):
        shown = run_id if len(run_id) <= 40 else run_id[:37] + "..."
        raise UserError(f"bad run id {shown!r}: expected 1 to 16 hex digits as printed by 'clbench run' (not a path)")
    folder = runs_dir(results)
    exact = folder / f"{run_id}.json"
    if len(run_id) == 16 and is_regular_file(exact):
        return exact
    matches = sorted(p for p in folder.glob(f"{run_id}*.json") if RUN_ID.match(p.stem)) if folder.is_dir() else []
    if not matches:
        raise UserError(f"no record for run id {run_id!r} in {str(folder)!r}")
    if len(matches) > 1:
        ids = ", ".join(m.stem for m in matches[:5])
        raise UserError(f"run id prefix {run_id!r} is ambiguous: {ids}")
    return matches[0]
