"""Shared fixtures: running the real CLI in a subprocess, small streams, in-process runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_PLUGIN = ROOT / "examples" / "clbench-example-plugin"

#: Settings that make a run take well under a second.
SMALL = (
    "--set",
    "benchmark.n_tasks=3",
    "--set",
    "benchmark.train_size=96",
    "--set",
    "benchmark.test_size=64",
    "--set",
    "train.epochs=1",
)


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


@pytest.fixture
def cli(tmp_path: Path):
    """Call the CLI with ``--results`` defaulting into the test's temp folder (when the command takes it)."""

    def call(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return run_cli(*args, env=env, cwd=tmp_path)

    return call


def load_json(text: str) -> Any:
    """Parse the JSON printed by ``--json``."""
    return json.loads(text)


@pytest.fixture(scope="session")
def host():
    """One plugin host for in-process tests (entry-point plugins included)."""
    from clbench.plugins import make_plugin_host

    return make_plugin_host()


def complete_record(run_id: str = "0123456789abcdef", *, seed: int = 0, tasks: int = 2, **extra: Any) -> dict[str, Any]:
    """A minimal record that :func:`clbench.records.check_record` accepts as complete (status ok)."""
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
