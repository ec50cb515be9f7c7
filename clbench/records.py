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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from clbench.errors import UserError
from clbench.files import UnsafeFile, folder_lock, is_regular_file, read_text_safely, temp_name, write_text_atomic
from clbench.text import printable

#: The record layout this clbench writes; records of versions 1..SCHEMA_VERSION are read.
SCHEMA_VERSION = 1
#: Statuses of a record; only ``ok`` is complete.
STATUSES = ("ok", "failed", "interrupted", "running")
RUN_ID = re.compile(r"^[0-9a-f]{16}$")
RUN_ID_PREFIX = re.compile(r"^[0-9a-f]{1,16}$")


class MalformedRecord(ValueError):
    """A record that :class:`RunRecord` refuses was about to be written (a bug in clbench or a plugin)."""


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


#: Upgrades of older record layouts: ``MIGRATIONS[v]`` turns a version-``v`` record (a dict) into a
#: version ``v + 1`` one. Version 1 is the first and current layout, so there is none yet; a change
#: of layout bumps :data:`SCHEMA_VERSION` and adds its step here, and every reader gets it.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a record of any known schema version) upgraded to :data:`SCHEMA_VERSION`."""
    version = data.get("schema_version")
    while isinstance(version, int) and not isinstance(version, bool) and version < SCHEMA_VERSION:
        data = MIGRATIONS[version](dict(data))
        version = data["schema_version"] = version + 1
    return data


class RunRecord(BaseModel):
    """The record of one run: what ``results/runs/<run_id>.json`` holds (schema version 1).

    Every record is validated by this model when it is written and when it is read; the fields'
    descriptions are the schema's documentation. Only ``ok`` records are complete: they hold a
    square accuracy matrix R (row i: after training task i; column j: task j), the accuracies at
    init, and the metrics. Keys a later clbench adds are kept as they are (``extra="allow"``).
    """

    model_config = ConfigDict(extra="allow", strict=True)

    schema_version: int = Field(description="layout version; records of versions 1..SCHEMA_VERSION are read")
    run_id: str = Field(description="16 hex digits: the hash of the config's identity (clbench.config)")
    status: Literal["ok", "failed", "interrupted", "running"] = Field(description="only ok is complete")
    error: str | None = Field(None, description="why the run failed: 'Type: message' on one line")
    traceback: str | None = Field(None, description="the failure's Python traceback")
    config: dict[str, Any] = Field(description="the canonical config: every component, option and train setting")
    seed: int = Field(description="the run seed (also config.seed)")
    label: str | None = Field(None, description="the variant label of an experiment file, when it has one")
    versions: dict[str, Any] = Field(
        default_factory=dict,
        description="clbench, torch, python and plugin versions; commit: the git commit of clbench's checkout (+dirty), null for a regular install",
    )
    accuracy_matrix: list[list[float | None]] = Field(
        default_factory=list, description="R, T x T (fewer rows if unfinished; null: not measured)"
    )
    init_accuracy: list[float] = Field(default_factory=list, description="accuracy on each task before training (T)")
    metrics: dict[str, float | None] = Field(default_factory=dict, description="metrics of R (clbench.metrics)")
    metric_conventions: dict[str, str] = Field(default_factory=dict, description="how each metric is defined")
    adapted_accuracy_matrix: list[list[float]] | None = Field(None, description="R after test-time adaptation")
    adapted_init_accuracy: list[float] | None = Field(None, description="init accuracies after adaptation")
    adapted_metrics: dict[str, float | None] | None = Field(None, description="metrics of the adapted R")
    train_stats: list[Any] = Field(default_factory=list, description="per task, what the learner reported")
    timings: dict[str, Any] = Field(default_factory=dict, description="seconds per phase; start_unix")
    started_at: str | None = Field(None, description="UTC start time, ISO 8601, to the second")
    duration_s: float | None = Field(None, description="wall time of the run in seconds")
    runtime: dict[str, Any] = Field(default_factory=dict, description="threads, platform: what may differ by machine")
    benchmark_info: dict[str, Any] = Field(default_factory=dict, description="facts the benchmark recorded")
    extras: dict[str, Any] = Field(default_factory=dict, description="plugins' data, each under its own key")
    hook_errors: list[Any] = Field(default_factory=list, description="lifecycle hooks that raised: plugin, hook, error")

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        """The checks that say what is wrong in one short phrase, in the order a reader needs them."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        for key in ("run_id", "status", "config"):
            if key not in data:
                raise ValueError(f"no {key!r} (not a clbench record, or a partial one)")
        version = data.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValueError(f"bad schema_version {version!r}")
        if version > SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {version} is newer than this clbench reads ({SCHEMA_VERSION}); upgrade clbench"
            )
        if not isinstance(data["run_id"], str) or not RUN_ID.match(data["run_id"]):
            raise ValueError(f"bad run_id {data['run_id']!r}")
        if data["status"] not in STATUSES:
            raise ValueError(f"unknown status {data['status']!r}")
        if not isinstance(data["config"], dict):
            raise ValueError("'config' is not an object")
        seed = data.get("seed", data["config"].get("seed"))
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"bad seed {seed!r}")
        if data["status"] == "ok":
            if not _is_matrix(data.get("accuracy_matrix")):
                raise ValueError("status ok but the accuracy matrix is missing or not square")
            init = data.get("init_accuracy")
            if (
                not isinstance(init, list)
                or len(init) != len(data["accuracy_matrix"])
                or not all(map(_is_number, init))
            ):
                raise ValueError("status ok but init_accuracy is missing or does not match the matrix")
            for name in ("metrics", "adapted_metrics"):
                block = data.get(name)
                if block is None and name == "adapted_metrics":
                    continue
                if not isinstance(block, dict) or (name == "metrics" and not block):
                    raise ValueError(f"status ok but {name!r} is missing or empty")
                for key, value in block.items():
                    if value is not None and not _is_number(value):
                        raise ValueError(f"{name}.{key} is not a number")
        elif data.get("error") is not None and not isinstance(data.get("error"), str):
            raise ValueError("'error' is not a string")
        return {**data, "seed": seed}

    @field_validator(
        "accuracy_matrix", "init_accuracy", "adapted_accuracy_matrix", "adapted_init_accuracy", mode="before"
    )
    @classmethod
    def _ints_are_numbers(cls, value: Any) -> Any:
        """Accuracies of 0 and 1 may be written as integers; read them as floats."""
        if isinstance(value, list):
            return [_as_floats(v) for v in value]
        return value

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON-ready data: the keys it was built with (defaults left out)."""
        return self.model_dump(mode="json", exclude_unset=True)


def _as_floats(value: Any) -> Any:
    if isinstance(value, list):
        return [_as_floats(v) for v in value]
    return float(value) if _is_number(value) else value


def check_record(data: Any) -> str | None:
    """Why ``data`` is not a usable record (one short phrase), or None when :class:`RunRecord`
    accepts it."""
    try:
        RunRecord.model_validate(migrate(data) if isinstance(data, dict) else data)
    except ValidationError as exc:
        err = exc.errors()[0]
        message = str(err["msg"]).removeprefix("Value error, ")
        where = ".".join(str(p) for p in err["loc"])
        return message if not where else f"{where}: {message}"
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
    try:
        record = RunRecord.model_validate(migrate(data) if isinstance(data, dict) else data)
    except ValidationError:
        return None, check_record(data)
    return record.to_dict() | {"seed": record.seed}, None


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
    problem = check_record(strict_json(record))
    if problem is not None:  # a bug in clbench or a plugin: never write what readers would refuse
        raise MalformedRecord(f"not written: the record of {record.get('run_id')!r} is malformed ({problem})")
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
