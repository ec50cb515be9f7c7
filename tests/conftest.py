"""Shared fixtures: the real CLI in a subprocess, one plugin host. Helpers are in ``tests/helpers.py``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import run_cli


@pytest.fixture
def cli(tmp_path: Path):
    """Call the CLI with ``--results`` defaulting into the test's temp folder (when the command takes it)."""

    def call(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return run_cli(*args, env=env, cwd=tmp_path)

    return call


@pytest.fixture(scope="session")
def host():
    """One plugin host for in-process tests (entry-point plugins included)."""
    from clbench.plugins import make_plugin_host

    return make_plugin_host()
