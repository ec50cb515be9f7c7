"""Without Avalanche: simulated in subprocesses by a ``sitecustomize`` on PYTHONPATH whose meta-path
finder makes ``avalanche`` (and its submodules) impossible to find or import."""

from __future__ import annotations

import os

import pytest

from tests.helpers import run_cli, tiny_flags

BLOCKER = '''
import sys


class _NoAvalanche:
    """Pretend Avalanche is not installed: find_spec and import both fail."""

    def find_spec(self, name, path=None, target=None):
        if name == "avalanche" or name.startswith("avalanche."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoAvalanche())
'''

HINT = "pip install 'clbench[avalanche]'"
SMALL = tuple(tiny_flags(2))


@pytest.fixture(scope="module")
def no_avalanche(tmp_path_factory):
    """Environment variables that hide Avalanche from a subprocess."""
    site = tmp_path_factory.mktemp("no-avalanche")
    (site / "sitecustomize.py").write_text(BLOCKER)
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path}


def test_the_blocker_works(no_avalanche):
    import subprocess
    import sys

    code = "import importlib.util\nprint(importlib.util.find_spec('torch') is not None)\nimport avalanche\n"
    env = {**os.environ, **no_avalanche}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and proc.stdout.strip() == "True" and "No module named 'avalanche'" in proc.stderr


def test_list_shows_avalanche_strategies_unavailable_with_the_install_command(no_avalanche):
    proc = run_cli("list", "strategies", env=no_avalanche)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    names = [line.split()[0] for line in lines if line.startswith("  avalanche.")]
    assert {"avalanche.naive", "avalanche.gem", "avalanche.mer"} <= set(names)
    for name in names:
        at = next(i for i, line in enumerate(lines) if line.startswith(f"  {name} "))
        block = "\n".join(lines[at : at + 3])
        assert "unavailable" in block and HINT in block, block
    assert "  joint " in proc.stdout  # other strategies are listed as usual


def test_other_runs_work(no_avalanche, tmp_path):
    proc = run_cli("run", "-q", *SMALL, "--results", str(tmp_path), env=no_avalanche)
    assert proc.returncode == 0, proc.stderr
    assert "avg_accuracy" in proc.stdout
    proc = run_cli(
        "run",
        "-q",
        "--benchmark",
        "split-digits",
        "--set",
        "train.epochs=1",
        "--results",
        str(tmp_path),
        env=no_avalanche,
    )
    assert proc.returncode == 0, proc.stderr


def test_running_an_avalanche_strategy_is_a_one_line_error_naming_the_install_command(no_avalanche, tmp_path):
    proc = run_cli("run", "--strategy", "avalanche.naive", *SMALL, "--results", str(tmp_path), env=no_avalanche)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "avalanche.naive" in lines[0] and HINT in lines[0]
    assert not list(tmp_path.glob("runs/*.json"))
