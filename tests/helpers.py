"""Helpers shared by the tests: the tiny run every end-to-end test uses, the real CLI in a
subprocess, and a minimal complete record. Fixtures live in ``conftest.py``; everything a test
imports lives here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_PLUGIN = ROOT / "examples" / "clbench-example-plugin"

#: The one tiny run: a few small tasks of the default stream, one epoch (well under a second).
TINY = {"benchmark.n_tasks": 3, "benchmark.train_size": 96, "benchmark.test_size": 64, "train.epochs": 1}


def tiny_assignments(n_tasks: int = 3, **overrides: Any) -> list[str]:
    """The tiny run as ``SECTION.KEY=VALUE`` strings (``n_tasks`` tasks; ``train_size=100`` and the
    like override the benchmark's sizes)."""
    settings = {**TINY, "benchmark.n_tasks": n_tasks}
    settings.update({f"benchmark.{k}": v for k, v in overrides.items()})
    return [f"{key}={value}" for key, value in settings.items()]


def tiny_flags(n_tasks: int = 3, **overrides: Any) -> list[str]:
    """The tiny run as command-line flags: ``--set SECTION.KEY=VALUE`` pairs."""
    flags: list[str] = []
    for assignment in tiny_assignments(n_tasks, **overrides):
        flags += ["--set", assignment]
    return flags


#: The tiny run's flags (3 tasks), for the many tests that take it as is.
SMALL = tuple(tiny_flags())


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: str | Path | None = None
) -> subprocess.CompletedProcess:
    """Run ``python -m clbench ARGS`` in a subprocess and capture its output."""
    full_env = dict(os.environ)
    full_env.pop("CLBENCH_DISABLE_PLUGINS", None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "clbench", *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=600
    )


def complete_record(run_id: str = "0123456789abcdef", *, seed: int = 0, tasks: int = 2, **extra: Any) -> dict[str, Any]:
    """A minimal record that :class:`clbench.records.RunRecord` accepts as complete (status ok)."""
    matrix = [[0.5 + 0.1 * (i == j) for j in range(tasks)] for i in range(tasks)]
    record = {
        "schema_version": 1,
        "run_id": run_id,
        "status": "ok",
        "error": None,
        "seed": seed,
        "config": {"model": {"name": "mlp", "options": {}}, "seed": seed},
        "accuracy_matrix": matrix,
        "init_accuracy": [0.2] * tasks,
        "metrics": {"avg_accuracy": 0.55, "latest_task_accuracy": 0.6},
    }
    record.update(extra)
    return record
