"""Running a sweep's jobs: in a local process pool or on a Ray cluster.

Workers return records; only the driver writes them (atomically), so a killed worker or driver
never leaves a partial record, and a cluster needs no shared filesystem. A job that raises, or
whose worker dies, becomes a ``failed`` record with the reason; the sweep goes on.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from clbench.records import SCHEMA_VERSION

#: Thread-count variables of the native libraries a run may load (OpenBLAS under numpy/scipy and
#: numba's BLAS calls, MKL, OpenMP under torch).
NATIVE_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


def limit_native_threads(threads: int) -> None:
    """Cap the native libraries' thread pools at ``threads`` in this process and its children,
    unless the user set them: call before numpy or torch is imported.

    A run uses ``threads`` threads; OpenBLAS otherwise starts one per core, and its idle threads
    spin for a while after each call, taking the core that a run (or the other worker) needs.
    """
    for name in NATIVE_THREAD_VARIABLES:
        os.environ.setdefault(name, str(threads))


@dataclass(frozen=True)
class Job:
    """One run to execute: the canonical config, its id, plugins to load, torch threads, and the
    folder its per-task checkpoints go to (None: none), from which it also resumes."""

    run_id: str
    canonical: dict[str, Any]
    plugins: tuple[str, ...] = ()
    threads: int = 1
    checkpoints: str | None = None
    #: The settings that are not in the canonical config (``ResolvedConfig.settings()``): the device, loggers.
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The sweep's results folder (where loggers write), its name (one experiment in trackers), the run's label.
    results: str | None = None
    experiment: str | None = None
    label: str | None = None


_HOSTS: dict[tuple[str, ...], Any] = {}


def _host_for(plugins: tuple[str, ...]) -> Any:
    from clbench.plugins import make_plugin_host

    if plugins not in _HOSTS:
        _HOSTS[plugins] = make_plugin_host(plugins)
    return _HOSTS[plugins]


def failed_record(job: Job, error: str) -> dict[str, Any]:
    """A record for a job that could not produce one itself (its worker raised or died)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": job.run_id,
        "status": "failed",
        "error": error,
        "config": job.canonical,
        "seed": job.canonical.get("seed"),
        "accuracy_matrix": [],
        "init_accuracy": [],
        "metrics": {},
        "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "duration_s": None,
    }


def no_implicit_path() -> None:
    """Drop the implicit current-folder entry ('' at the front of ``sys.path``, which ``python -c``
    adds) so that a worker never imports a ``numpy.py`` or ``torch.py`` lying in the folder the
    sweep was started from. Folders the user named (``PYTHONPATH``) stay."""
    import sys

    while "" in sys.path:
        sys.path.remove("")


def run_job(job: Job) -> dict[str, Any]:
    """Execute one job in this process and return its record (never raises)."""
    try:
        no_implicit_path()
        limit_native_threads(job.threads)  # before this worker imports numpy and torch
        from clbench.config import config_from_canonical, resolve
        from clbench.harness import execute

        host = _host_for(job.plugins)
        resolved = resolve(config_from_canonical(job.canonical, job.settings), host.registry)
        if resolved.run_id != job.run_id:
            return failed_record(
                job,
                f"config resolves to run id {resolved.run_id} here, not {job.run_id}: "
                "plugin versions differ between driver and worker?",
            )
        record = execute(
            resolved,
            host,
            results=None,
            threads=job.threads,
            checkpoints=job.checkpoints,
            results_dir=job.results,
            experiment=job.experiment,
            label=job.label,
        ).record
        gpus = _ray_gpu_ids()
        if gpus is not None:
            record["runtime"]["ray_gpu_ids"] = gpus
        # plain JSON types only: unpickling a torch or numpy object would make the driver import
        # that library (seconds of CPU taken from the workers), and records are strict JSON anyway
        from clbench.records import dumps

        return json.loads(dumps(record, indent=None))
    except BaseException as exc:  # noqa: BLE001 - a job must come back as a record
        return failed_record(job, " ".join(f"{type(exc).__name__}: {exc}".split()))


def _ray_gpu_ids() -> list[int] | None:
    """The GPUs Ray granted this task (``--gpus-per-run``), when this process is a Ray worker."""
    import sys

    ray = sys.modules.get("ray")  # imported only in Ray workers: never import it here
    if ray is None or not ray.is_initialized():
        return None
    try:
        return [int(i) for i in ray.get_gpu_ids()]
    except Exception:  # noqa: BLE001 - not inside a task
        return None


_STARTED: Any = None  # in a local pool worker: the queue that tells the driver which runs started


def _worker_init(driver_pid: int, started: Any = None) -> None:
    """Initialise a local pool worker: Ctrl-C is the driver's to handle (it stops the workers),
    the worker exits within a second of the driver's death, however the driver died, and it
    reports each run it starts on ``started`` (a queue the driver reads when interrupted)."""
    import signal
    import threading
    import time

    global _STARTED
    _STARTED = started
    no_implicit_path()
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            try:
                os.kill(driver_pid, 0)
            except (ProcessLookupError, PermissionError):  # gone (or the pid now belongs to someone else)
                os._exit(1)

    threading.Thread(target=watch, name="clbench-driver-watch", daemon=True).start()


def run_pool_job(job: Job) -> dict[str, Any]:
    """:func:`run_job` in a local pool worker, telling the driver first that the run started."""
    if _STARTED is not None:
        _STARTED.put(job.run_id)
    return run_job(job)


#: Modules the local pool's fork server imports once, so that each worker forked from it starts
#: with them loaded (torch alone takes about 2 s to import, and torch.optim's first use imports
#: torch._dynamo, about 2 s more); see :func:`worker_context`.
WORKER_PRELOAD = ["clbench.worker_preload"]


def worker_context(threads: int) -> Any:
    """The multiprocessing context of the local pool's workers.

    Where the platform has it (Linux, macOS): ``forkserver``, with :data:`WORKER_PRELOAD`
    imported once in the server: every worker is a fresh fork of a process that has imported
    torch and clbench's harness but run nothing (no threads, no tensors), so workers start in
    milliseconds instead of each paying the imports. Elsewhere: ``spawn``. The native thread
    pools are capped first (:func:`limit_native_threads`), so the server and the workers inherit it.
    """
    import multiprocessing as mp

    limit_native_threads(threads)
    # the server is started as `python -c ...`, which puts the current folder first on sys.path:
    # PYTHONSAFEPATH (Python 3.11+) keeps it off; the preload and run_job drop it as well
    os.environ.setdefault("PYTHONSAFEPATH", "1")
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(WORKER_PRELOAD)
    return context


@dataclass
class Progress:
    """What an executor has in hand, for the driver to report when it is interrupted."""

    in_flight: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)

    def take_started(self, queue: Any) -> None:
        """Read the run ids that workers reported starting; those not finished are in flight."""
        while not queue.empty():
            self.in_flight.add(queue.get())
        self.in_flight -= self.finished


def _stop_pool(pool: Any) -> None:
    """Stop a process pool now: terminate its workers (they may be minutes into a run), drop
    queued jobs, and reap the processes."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        try:
            process.terminate()
        except Exception:  # noqa: BLE001 - already gone
            pass
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.join(timeout=2)
        if process.is_alive():
            process.kill()
            process.join(timeout=1)


def run_local(jobs: list[Job], workers: int, progress: Progress | None = None) -> Iterator[dict[str, Any]]:
    """Run jobs in a pool of ``workers`` processes (no state shared with the driver: see
    :func:`worker_context`); yield records as they complete. ``workers=1`` still uses one worker
    process, for isolation. If the driver is interrupted (or the generator is closed), the
    workers are stopped at once and their runs discarded; ``progress.in_flight`` then holds the
    runs that had started."""
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    progress = progress if progress is not None else Progress()
    pending_jobs = list(jobs)
    context = worker_context(max((job.threads for job in jobs), default=1))
    started = context.SimpleQueue()
    while pending_jobs:
        pool = _new_pool(context, workers, started)
        try:
            futures = {pool.submit(run_pool_job, job): job for job in pending_jobs}
            pending_jobs = []
            broken = False
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    job = futures.pop(future)
                    try:
                        record = future.result()
                    except BrokenProcessPool:
                        broken = True
                        pending_jobs.append(job)
                        continue
                    except Exception as exc:  # noqa: BLE001
                        record = failed_record(job, f"{type(exc).__name__}: {exc}")
                    progress.finished.add(job.run_id)
                    progress.take_started(started)
                    yield record
        except BaseException:
            _stop_pool(pool)
            progress.take_started(started)
            raise
        pool.shutdown(wait=True)
        if broken:
            # a worker died (e.g. killed or out of memory): the jobs it may have held cannot be
            # told apart, so each unfinished one is retried once alone before being failed.
            for job in pending_jobs:
                yield from _run_alone(job, context, started, progress)
            pending_jobs = []


def _new_pool(context: Any, workers: int, started: Any) -> Any:
    """A process pool whose workers watch this driver and report the runs they start. The fork
    server is started (and has imported torch) before any worker is asked for, so an interrupt
    during start-up leaves no half-created worker behind."""
    from concurrent.futures import ProcessPoolExecutor

    if context.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_worker_init, initargs=(os.getpid(), started)
    )


def _run_alone(job: Job, context: Any, started: Any, progress: Progress) -> Iterator[dict[str, Any]]:
    from concurrent.futures.process import BrokenProcessPool

    pool = _new_pool(context, 1, started)
    try:
        future = pool.submit(run_pool_job, job)
        try:
            record = future.result()
        except BrokenProcessPool:
            record = failed_record(job, "the worker process died (killed, or out of memory)")
    except BaseException:
        _stop_pool(pool)
        progress.take_started(started)
        raise
    pool.shutdown(wait=True)
    progress.finished.add(job.run_id)
    progress.take_started(started)
    yield record


def executor(name: str) -> Callable[..., Iterator[dict[str, Any]]]:
    """The executor function of ``name`` (local or ray)."""
    if name == "ray":
        from clbench.ray_executor import run_ray

        return run_ray
    return {"local": run_local}[name]


def default_workers() -> int:
    """One worker per CPU core."""
    return max(1, os.cpu_count() or 1)
