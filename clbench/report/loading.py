"""Read run records from a results folder for a report.

Every file goes through :func:`clbench.records.load_record`: unreadable files, non-regular files,
partial or malformed records and records of an unknown schema version are skipped with a reason;
the caller warns about each. Interrupted and still-running records are skipped too: a report
compares finished runs only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clbench.errors import UserError
from clbench.records import load_record, runs_dir

#: Statuses a report shows; anything else (``running``, ``interrupted``) is not a finished run.
FINISHED = ("ok", "failed")


@dataclass
class Loaded:
    """The records found in a results folder: finished ones (ok or failed) and skipped files."""

    folder: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def load_records(results: str | Path) -> Loaded:
    """Every usable record in ``results/runs/*.json``, sorted by file name; others in ``skipped``.

    Raises :class:`UserError` when the folder holds no record files at all.
    """
    folder = Path(results)
    runs = runs_dir(folder)
    if not folder.is_dir():
        raise UserError(f"results folder {str(folder)!r} does not exist")
    files = sorted(runs.glob("*.json")) if runs.is_dir() else []
    if not files:
        raise UserError(f"no run records found in {str(runs)!r}; run 'clbench run' or 'clbench sweep' first")
    out = Loaded(folder=folder)
    for path in files:
        data, reason = load_record(path)
        if data is None:
            out.skipped.append((path, str(reason)))
        elif data["status"] not in FINISHED:
            out.skipped.append((path, f"status {data['status']!r}: the run has not finished"))
        else:
            out.records.append(data)
    if not out.records:
        raise UserError(f"no readable run records in {str(runs)!r} ({len(out.skipped)} file(s) skipped)")
    return out
