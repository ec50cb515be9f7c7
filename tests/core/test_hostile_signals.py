"""Signals, concurrency, the working folder and the disk: SIGINT, SIGTERM and SIGKILL of a run, a
sweep driver, a sweep worker and a report leave no processes, temporary or half-written files;
a failed record never replaces a complete one written meanwhile; sweep workers import nothing
from the working folder; an unwritable or full results folder is said in one line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from clbench.records import is_complete
from tests.helpers import complete_record
from tests.hostile import (
    CLBENCH,
    SMALL,
    assert_one_line_error,
    clb,
    env_with,
    leftovers,
    marked_processes,
    new_mark,
    wait_until,
)

LONG_RUN = ["--set", "benchmark.n_tasks=20", "--set", "train.epochs=50", "--set", "benchmark.train_size=2000"]


def _started_plugin(folder: Path) -> tuple[str, Path]:
    """A plugin that writes ``STARTED`` in the working folder when the first task starts training."""
    from tests.hostile import write_plugin

    module = write_plugin(
        folder / "plug",
        "say_started",
        """
        @hookimpl
        def clbench_task_start(context, task_index):
            open("STARTED", "a").close()
        """,
    )
    return module, folder / "plug"


class Started(subprocess.Popen):
    """A command started in the background, its output going to files (a pipe would also wait for
    any process that outlived the command); :meth:`finish` waits for the command alone."""

    def finish(self, timeout: float = 30) -> tuple[str, str]:
        """Wait for the command; its stdout and stderr."""
        self.wait(timeout=timeout)
        return self.out_path.read_text(), self.err_path.read_text()


def _start(args, cwd, mark, pythonpath=None):
    out, err = Path(cwd) / ".." / f"{mark}.out", Path(cwd) / ".." / f"{mark}.err"
    with open(out, "w") as fo, open(err, "w") as fe:
        proc = Started(
            [CLBENCH, *args],
            cwd=cwd,
            env=env_with(pythonpath, mark=mark),
            text=True,
            stdout=fo,
            stderr=fe,
            stdin=subprocess.DEVNULL,
        )
    proc.out_path, proc.err_path = out, err
    return proc


def _workers(mark, driver_pid):
    """The pool's workers: marked processes forked by the fork server (the driver's child)."""

    def ppid(pid):
        try:
            return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return -1

    marked = marked_processes(mark)
    servers = {pid for pid in marked if ppid(pid) == driver_pid}
    return [pid for pid in marked if ppid(pid) in servers]


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_run_stops_promptly_on_sigint_and_sigterm_and_records_the_interruption(tmp_path, sig, code):
    mark = new_mark()
    module, path = _started_plugin(tmp_path)
    proc = _start(["run", *LONG_RUN, "--results", "r", "-q", "--plugin", module], tmp_path, mark, path)
    assert wait_until(lambda: (tmp_path / "STARTED").exists() or proc.poll() is not None, 60)
    time.sleep(1.0)  # well into training
    sent = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.finish(timeout=30)
    assert time.monotonic() - sent < 3.0
    assert proc.returncode == code and "interrupted" in err and "Traceback" not in err, err
    records = [json.loads(p.read_text()) for p in tmp_path.glob("r/runs/*.json")]
    assert [r["status"] for r in records] == ["interrupted"] and sig.name in records[0]["error"]
    assert "kept 0 of" in err and not leftovers(tmp_path)
    assert wait_until(lambda: not marked_processes(mark), 5)


@pytest.mark.slow
def test_run_killed_leaves_no_temporary_files(tmp_path):
    mark = new_mark()
    module, path = _started_plugin(tmp_path)
    proc = _start(["run", *LONG_RUN, "--results", "r", "-q", "--plugin", module], tmp_path, mark, path)
    assert wait_until(lambda: (tmp_path / "STARTED").exists() or proc.poll() is not None, 60)
    time.sleep(1.0)
    proc.kill()
    proc.finish(timeout=30)
    assert not leftovers(tmp_path) and not list(tmp_path.glob("r/runs/*"))
    assert wait_until(lambda: not marked_processes(mark), 5)


def _start_sweep(tmp_path, mark, seeds="0-3", workers="2", extra=()):
    proc = _start(
        ["sweep", *LONG_RUN, "--seeds", seeds, "--workers", workers, "--results", "r", "-q", *extra], tmp_path, mark
    )
    busy = wait_until(lambda: len(_workers(mark, proc.pid)) >= int(workers) or proc.poll() is not None, 90)
    assert busy and proc.poll() is None, proc.err_path.read_text()
    time.sleep(2.0)  # the workers are running their jobs
    return proc


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sweep_driver_stops_within_seconds_and_says_what_was_in_flight(tmp_path, sig, code):
    mark = new_mark()
    proc = _start_sweep(tmp_path, mark)
    sent = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.finish(timeout=30)
    assert time.monotonic() - sent < 3.0, err
    assert proc.returncode == code, err
    assert (
        "sweep interrupted" in err
        and "kept 0 record(s)" in err
        and "stopped 2 run(s) in flight" in err
        and "last checkpoint" in err
    ), err
    assert "2 not started" in err and "Traceback" not in err
    assert wait_until(lambda: not marked_processes(mark), 5), marked_processes(mark)
    assert not leftovers(tmp_path) and not list(tmp_path.glob("r/runs/*.json"))


@pytest.mark.slow
def test_sweep_workers_exit_when_the_driver_is_killed(tmp_path):
    mark = new_mark()
    proc = _start_sweep(tmp_path, mark)
    proc.kill()
    proc.finish(timeout=30)
    assert wait_until(lambda: not marked_processes(mark), 8), marked_processes(mark)
    assert not leftovers(tmp_path)


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_the_sweep_completes(tmp_path):
    mark = new_mark()
    proc = _start(
        ["sweep", *SMALL, "--set", "train.epochs=30", "--seeds", "0-1", "--workers", "1", "--results", "r", "-q"],
        tmp_path,
        mark,
    )
    assert wait_until(lambda: _workers(mark, proc.pid) or proc.poll() is not None, 90)
    time.sleep(1.5)
    for pid in _workers(mark, proc.pid):
        os.kill(pid, signal.SIGKILL)
    out, err = proc.finish(timeout=300)
    assert proc.returncode == 0, err
    runs = sorted((tmp_path / "r" / "runs").glob("*.json"))
    assert len(runs) == 2 and all(is_complete(p) for p in runs)
    assert wait_until(lambda: not marked_processes(mark), 5) and not leftovers(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_report_interrupted_leaves_the_old_report_and_no_temporary_files(tmp_path, sig):
    from tests.core.test_report_support import standard_results

    results = standard_results(tmp_path / "results")
    first = clb("report", str(results), "--out", "rep.md", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = {p: p.read_bytes() for p in [tmp_path / "rep.md", *sorted((tmp_path / "rep_figures").iterdir())]}
    mark = new_mark()
    proc = _start(["report", str(results), "--out", "rep.md"], tmp_path, mark)
    time.sleep(1.2)  # drawing figures
    proc.send_signal(sig)
    proc.finish(timeout=30)
    assert not leftovers(tmp_path), leftovers(tmp_path)
    after = {p: p.read_bytes() for p in [tmp_path / "rep.md", *sorted((tmp_path / "rep_figures").iterdir())]}
    assert set(after) == set(before)  # the report and every figure it links are there, whole
    assert wait_until(lambda: not marked_processes(mark), 5)
    again = clb("report", str(results), "--out", "rep.md", cwd=tmp_path)
    assert again.returncode == 0 and not leftovers(tmp_path)


def test_a_swap_stopped_between_its_renames_is_repaired_by_the_next_report(tmp_path):
    from tests.core.test_report_support import standard_results

    results = standard_results(tmp_path / "results")
    assert clb("report", str(results), "--out", "rep.md", cwd=tmp_path, timeout=120).returncode == 0
    figures = tmp_path / "rep_figures"
    figures.rename(tmp_path / ".rep_figures.0123abcd.old")  # as if killed between the two renames
    (tmp_path / ".rep_figures.4567cdef.tmp").mkdir()
    again = clb("report", str(results), "--out", "rep.md", cwd=tmp_path, timeout=120)
    assert again.returncode == 0, again.stderr
    assert figures.is_dir() and not leftovers(tmp_path)


def test_a_failed_run_never_replaces_a_complete_record_written_concurrently(tmp_path, monkeypatch):
    """A failing run checks for a complete record, finds none, and is delayed before writing; an
    identical run completes meanwhile. The complete record must survive."""
    import clbench.records as records

    run_id = "0123456789abcdef"
    real_load = records.load_record
    checked = threading.Event()

    def slow_load(path):
        result = real_load(path)
        checked.set()
        time.sleep(0.5)  # the window between the check and the write
        return result

    monkeypatch.setattr(records, "load_record", slow_load)
    failed = complete_record(run_id, status="failed", error="boom", metrics={})
    writer = threading.Thread(target=records.save_record, args=(tmp_path, failed))
    writer.start()
    assert checked.wait(10)
    monkeypatch.setattr(records, "load_record", real_load)
    records.save_record(tmp_path, complete_record(run_id, marker="complete"))  # the concurrent complete run
    writer.join()
    on_disk = json.loads(records.record_path(tmp_path, run_id).read_text())
    assert on_disk["status"] == "ok" and on_disk["marker"] == "complete"
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [f"{run_id}.json"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_records_and_reports_respect_the_umask(tmp_path, umask, mode):
    from clbench.records import write_atomic

    old = os.umask(umask)
    try:
        path = write_atomic(tmp_path / "runs" / "0123456789abcdef.json", complete_record())
        from clbench.files import write_text_atomic

        report = write_text_atomic(tmp_path / "report.md", "# clbench report\n")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode and report.stat().st_mode & 0o777 == mode


@pytest.mark.parametrize("name", ["numpy.py", "torch.py", "pluggy.py", "clbench_basic.py"])
def test_sweep_workers_import_nothing_from_the_working_folder(tmp_path, name):
    (tmp_path / name).write_text("open('MARKER', 'w').write('imported')\nraise ImportError('planted')\n")
    proc = clb("sweep", *SMALL, "--seeds", "0", "--workers", "1", "-q", "--results", "r", cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "MARKER").exists()
    assert all(is_complete(p) for p in (tmp_path / "r" / "runs").glob("*.json"))


def _root_and(tool):
    return os.geteuid() == 0 and shutil.which(tool) is not None


@pytest.mark.skipif(not _root_and("chattr"), reason="needs root and chattr to make a folder unwritable for root")
@pytest.mark.parametrize("command", ["run", "sweep"])
def test_an_unwritable_results_folder_is_refused_before_training(tmp_path, command):
    runs = tmp_path / "r" / "runs"
    runs.mkdir(parents=True)
    if subprocess.run(["chattr", "+i", str(runs)], capture_output=True).returncode != 0:
        pytest.skip("this file system does not support chattr +i")
    try:
        started = time.monotonic()
        args = ["run", *LONG_RUN] if command == "run" else ["sweep", *LONG_RUN, "--seeds", "0-1"]
        proc = clb(*args, "--results", "r", cwd=tmp_path, timeout=60)
        assert_one_line_error(proc, "cannot write records")
        assert time.monotonic() - started < 20  # found before training, not after it
    finally:
        subprocess.run(["chattr", "-i", str(runs)])


@pytest.mark.skipif(not _root_and("mount"), reason="needs root to mount a small tmpfs")
def test_a_full_disk_prints_the_metrics_and_one_error_line(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        (disk / "r" / "runs").mkdir(parents=True)
        fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)  # leave less room than a record needs
        try:
            while True:
                os.write(fd, b"\0" * 512)
        except OSError:
            pass
        finally:
            os.close(fd)
        proc = clb("run", *SMALL, "--results", str(disk / "r"), cwd=tmp_path, timeout=120)
        assert proc.returncode == 1, proc.stderr
        assert "avg_accuracy" in proc.stdout  # the metrics are shown
        lines = proc.stderr.strip().splitlines()
        assert "could not write the record" in lines[-1] and "Traceback" not in proc.stderr
        # the checkpoint after the first task did not fit either: one warning, and the run went on
        assert len(lines) == 2 and "could not save the checkpoint" in lines[0], lines
        assert not leftovers(disk)
    finally:
        subprocess.run(["umount", str(disk)])
