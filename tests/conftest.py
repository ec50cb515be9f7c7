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


@pytest.fixture(scope="session")
def vision_root(tmp_path_factory):
    """A data root with made-up MNIST, Fashion-MNIST (600 train / 200 test images), CIFAR-10 and
    CIFAR-100 (3,000 / 2,000: 30 and 20 a class) files in the data sets' own formats (see clbench_vision.synthetic)."""
    from clbench_vision.synthetic import write_like

    root = tmp_path_factory.mktemp("vision-data")
    for key, seed in (("mnist", 1), ("fashion-mnist", 2)):
        write_like(root, key, 600, 200, seed=seed)
    write_like(root, "cifar10", 1000, 200, seed=3)
    write_like(root, "cifar100", 3000, 2000, seed=4)
    return root
