"""Read run records from a results folder for a report.

Unreadable files, partial records (a run still writing, or a file cut short) and records whose
shape is not what a report needs are skipped with a reason; the caller warns about each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clbench.errors import UserError
from clbench.records import runs_dir

#: Statuses a report knows; anything else (e.g. ``running``) is a partial record.
FINISHED = ("ok", "failed")


@dataclass
class Loaded:
    """The records found in a results folder: complete ones (ok or failed) and skipped files."""

    folder: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def _is_matrix(value: Any, rows: int | None = None) -> bool:
    if not isinstance(value, list) or not value or (rows is not None and len(value) != rows):
        return False
    width = len(value)
    for row in value:
        if not isinstance(row, list) or len(row) != width:
            return False
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in row):
            return False
    return True


def check_record(data: Any) -> str | None:
    """Why ``data`` cannot be used in a report (one short phrase), or None when it can."""
    if not isinstance(data, dict):
        return "not a JSON object"
    for key in ("run_id", "status", "config"):
        if key not in data:
            return f"no {key!r} (not a clbench record, or a partial one)"
    status = data.get("status")
    if status not in FINISHED:
        return f"status {status!r}: the run has not finished (partial record)"
    if not isinstance(data["config"], dict):
        return "'config' is not an object"
    seed = data.get("seed", data["config"].get("seed"))
    if not isinstance(seed, int) or isinstance(seed, bool):
        return f"bad seed {seed!r}"
    if status == "ok":
        metrics = data.get("metrics")
        if not isinstance(metrics, dict) or not metrics:
            return "status ok but no metrics"
        if not _is_matrix(data.get("accuracy_matrix")):
            return "status ok but the accuracy matrix is missing or not square"
        for name in ("metrics", "adapted_metrics"):
            block = data.get(name)
            if block is None and name == "adapted_metrics":
                continue
            if not isinstance(block, dict):
                return f"{name!r} is not an object"
            for key, value in block.items():
                if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
                    return f"{name}.{key} is not a number"
    return None


def load_records(results: str | Path) -> Loaded:
    """Every usable record in ``results/runs/*.json``, sorted by file name; others in ``skipped``.

    Raises :class:`UserError` when the folder holds no record files at all.
    """
    folder = Path(results)
    runs = runs_dir(folder)
    if not folder.is_dir():
        raise UserError(f"results folder {str(folder)!r} does not exist")
    files = sorted(p for p in runs.glob("*.json") if p.is_file()) if runs.is_dir() else []
    if not files:
        raise UserError(f"no run records found in {str(runs)!r}; run 'clbench run' or 'clbench sweep' first")
    out = Loaded(folder=folder)
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            out.skipped.append((path, f"unreadable: {exc}"))
            continue
        except ValueError as exc:
            out.skipped.append((path, f"not valid JSON (partial file?): {exc}"))
            continue
        reason = check_record(data)
        if reason is not None:
            out.skipped.append((path, reason))
            continue
        data.setdefault("seed", data["config"].get("seed"))
        out.records.append(data)
        out.paths.append(path)
    if not out.records:
        raise UserError(f"no readable run records in {str(runs)!r} ({len(out.skipped)} file(s) skipped)")
    return out
