"""Interrupt and resume: a run stopped by a real signal after its first checkpoint, then started
again, gives the record of a run that was never interrupted; so does a sweep killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import tiny_flags

#: Pauses every run at the start of task 1 (after the checkpoint of task 0 is saved), when asked to
#: through the environment, and says so with a file: the moment a test sends its signal.
PAUSE_PLUGIN = """
import os
import time
from pathlib import Path

from clbench import hookimpl


@hookimpl
def clbench_task_start(context, task_index):
    folder = os.environ.get("CLBENCH_TEST_PAUSE_DIR")
    if folder and task_index == int(os.environ.get("CLBENCH_TEST_PAUSE_AT", "1")):
        Path(folder, context.run_id).write_text("paused")
        time.sleep(60)
"""

CLBENCH = str(Path(sys.executable).with_name("clbench"))
TINY = [*tiny_flags(3), "--set", "train.epochs=2"]
SMALL_DNC = ["--set", "model.memory_slots=8", "--set", "model.word_size=4", "--set", "model.read_heads=1",
             "--set", "model.hidden_size=8"]  # fmt: skip

CONFIGS = {
    "mlp-none-reservoir": ["--replay", "reservoir"],
    "mlp-maml-prioritized": ["--meta", "maml", "--replay", "prioritized"],
    "dnc-fomaml-prioritized": ["--model", "dnc", "--meta", "fomaml", "--replay", "prioritized", *SMALL_DNC],
    "mlp-reptile-fifo": ["--meta", "reptile", "--replay", "fifo"],
    "joint": ["--strategy", "joint"],
}
COMPARED = ("accuracy_matrix", "init_accuracy", "metrics", "train_stats", "run_id")


def _env(tmp_path: Path, pause: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CLBENCH_DISABLE_PLUGINS", "CLBENCH_TEST_PAUSE_DIR")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tmp_path), env.get("PYTHONPATH", "")) if p)
    if pause is not None:
        env["CLBENCH_TEST_PAUSE_DIR"] = str(pause)
    return env


def _setup(tmp_path: Path) -> Path:
    (tmp_path / "pause_plugin.py").write_text(PAUSE_PLUGIN)
    pause = tmp_path / "paused"
    pause.mkdir()
    return pause


def _run(tmp_path: Path, args: list[str], results: str) -> dict:
    proc = subprocess.run(
        [CLBENCH, "run", *args, "--results", results, "--json", "-q", "--plugin", "pause_plugin"],
        capture_output=True, text=True, cwd=tmp_path, env=_env(tmp_path), timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _wait_for(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _interrupted_run(tmp_path: Path, args: list[str], pause: Path, at: int = 1) -> subprocess.CompletedProcess:
    """Start the run, wait until it pauses at task ``at``, send SIGINT as a terminal's Ctrl-C does."""
    for old in pause.iterdir():
        old.unlink()
    env = {**_env(tmp_path, pause), "CLBENCH_TEST_PAUSE_AT": str(at)}
    proc = subprocess.Popen(
        [CLBENCH, "run", *args, "--results", "r", "-q", "--plugin", "pause_plugin"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    try:
        assert _wait_for(lambda: any(pause.iterdir()) or proc.poll() is not None, 300)
        assert proc.poll() is None, proc.communicate()[1]
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert time.monotonic() - sent < 5
    finally:
        proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONFIGS))
def test_an_interrupted_run_resumes_to_the_uninterrupted_record(tmp_path, name):
    pause = _setup(tmp_path)
    args = [*CONFIGS[name], *TINY]
    reference = _run(tmp_path, args, "reference")

    stopped = _interrupted_run(tmp_path, args, pause)
    assert stopped.returncode == 130, stopped.stderr
    assert "kept 1 of 3 tasks" in stopped.stderr and "resumes from its last checkpoint" in stopped.stderr
    (record_file,) = (tmp_path / "r" / "runs").glob("*.json")
    partial = json.loads(record_file.read_text())
    assert partial["status"] == "interrupted" and partial["accuracy_matrix"] == reference["accuracy_matrix"][:1]
    checkpoint = tmp_path / "r" / "checkpoints" / f"{reference['run_id']}.pt"
    assert checkpoint.exists()

    resumed = _run(tmp_path, args, "r")
    assert {k: resumed[k] for k in COMPARED} == {k: reference[k] for k in COMPARED}
    assert resumed["status"] == "ok" and resumed["timings"]["resumed_after_task"] == [0]
    assert not checkpoint.parent.exists()  # removed once the run completed, and the empty folder too


@pytest.mark.slow
def test_a_strategy_that_cannot_resume_says_so_and_starts_again(tmp_path):
    pytest.importorskip("avalanche")
    pause = _setup(tmp_path)
    args = ["--strategy", "avalanche.naive", *TINY]
    reference = _run(tmp_path, args, "reference")
    stopped = _interrupted_run(tmp_path, args, pause)
    assert stopped.returncode == 130 and "cannot resume: the same command starts it again" in stopped.stderr
    assert not (tmp_path / "r" / "checkpoints").exists() or not any((tmp_path / "r" / "checkpoints").iterdir())
    again = _run(tmp_path, args, "r")
    assert {k: again[k] for k in COMPARED} == {k: reference[k] for k in COMPARED}


@pytest.mark.slow
def test_a_run_interrupted_twice_resumes_twice(tmp_path):
    pause = _setup(tmp_path)
    args = ["--meta", "maml", "--replay", "prioritized", *tiny_flags(4)]
    reference = _run(tmp_path, args, "reference")
    assert _interrupted_run(tmp_path, args, pause, at=1).returncode == 130
    second = _interrupted_run(tmp_path, args, pause, at=3)
    assert second.returncode == 130 and "kept 3 of 4 tasks" in second.stderr, second.stderr
    resumed = _run(tmp_path, args, "r")
    assert {k: resumed[k] for k in COMPARED} == {k: reference[k] for k in COMPARED}
    assert resumed["timings"]["resumed_after_task"] == [0, 2]
    assert len(resumed["timings"]["train_s"]) == 4  # one training time per task, none counted twice


@pytest.mark.slow
def test_restart_ignores_the_checkpoint(tmp_path):
    pause = _setup(tmp_path)
    args = ["--replay", "reservoir", *TINY]
    stopped = _interrupted_run(tmp_path, args, pause)
    assert stopped.returncode == 130
    proc = subprocess.run(
        [CLBENCH, "run", *args, "--results", "r", "-q", "--restart", "--keep-checkpoints"],
        capture_output=True, text=True, cwd=tmp_path, env=_env(tmp_path), timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0 and "resumed" not in proc.stderr, proc.stderr
    (record_file,) = (tmp_path / "r" / "runs").glob("*.json")
    record = json.loads(record_file.read_text())
    assert record["status"] == "ok" and "resumed_after_task" not in record["timings"]
    assert (tmp_path / "r" / "checkpoints" / f"{record['run_id']}.pt").exists()  # kept, as asked


@pytest.mark.slow
def test_a_sweep_killed_with_sigkill_resumes_each_run_from_its_last_task(tmp_path):
    pause = _setup(tmp_path)
    grid = ["--replay", "reservoir,prioritized", "--meta", "none,maml", *TINY, "--plugin", "pause_plugin"]
    proc = subprocess.Popen(
        [CLBENCH, "sweep", *grid, "--workers", "2", "--results", "r", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=_env(tmp_path, pause),
        start_new_session=True,
    )  # fmt: skip
    try:
        assert _wait_for(lambda: len(list(pause.iterdir())) >= 2 or proc.poll() is not None, 300)
        assert proc.poll() is None, proc.communicate()[1]
        os.killpg(proc.pid, signal.SIGKILL)  # the driver, the fork server and the workers, all at once
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    paused = {p.name for p in pause.iterdir()}
    checkpoints = {p.stem for p in (tmp_path / "r" / "checkpoints").glob("*.pt")}
    assert paused <= checkpoints and not list((tmp_path / "r" / "runs").glob("*.json"))

    again = subprocess.run(
        [CLBENCH, "sweep", *grid, "--workers", "2", "--results", "r", "-q"],
        capture_output=True, text=True, cwd=tmp_path, env=_env(tmp_path), timeout=900,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    records = {r["run_id"]: r for r in (json.loads(p.read_text()) for p in (tmp_path / "r" / "runs").glob("*.json"))}
    assert len(records) == 4 and all(r["status"] == "ok" for r in records.values())
    for run_id in paused:
        assert records[run_id]["timings"]["resumed_after_task"] == [0]
    for meta in ("none", "maml"):
        for replay in ("reservoir", "prioritized"):
            reference = _run(tmp_path, ["--meta", meta, "--replay", replay, *TINY], f"ref-{meta}-{replay}")
            assert {k: records[reference["run_id"]][k] for k in COMPARED} == {k: reference[k] for k in COMPARED}
    assert not (tmp_path / "r" / "checkpoints").exists()  # the sweep leaves no empty folder behind


def test_a_checkpoint_written_while_its_empty_folder_is_removed_still_lands(tmp_path, monkeypatch):
    """A finished run removes the empty checkpoints folder; another run of the same results folder
    may be between creating that folder and opening its temp file there: it creates it again."""
    import clbench.files
    from clbench.checkpoints import remove_if_empty

    folder = tmp_path / "r" / "checkpoints"
    real_open = os.open
    calls = []

    def racing_open(path, flags, mode=0o777):
        calls.append(path)
        if len(calls) == 1:
            remove_if_empty(folder)  # the other run finishes right now
        return real_open(path, flags, mode)

    monkeypatch.setattr(clbench.files.os, "open", racing_open)
    written = clbench.files.write_bytes_atomic(folder / "abc.pt", b"state")
    assert len(calls) == 2 and written.read_bytes() == b"state"
    assert [p.name for p in folder.iterdir()] == ["abc.pt"]
