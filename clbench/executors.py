"""Running a sweep's jobs: in a local process pool or on a Ray cluster.

Workers return records; only the driver writes them (atomically), so a killed worker or driver
never leaves a partial record, and a cluster needs no shared filesystem. A job that raises, or
whose worker dies, becomes a ``failed`` record with the reason; the sweep goes on.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator

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
    """One run to execute: the canonical config, its id, plugins to load and torch threads."""

    run_id: str
    canonical: dict[str, Any]
    plugins: tuple[str, ...] = ()
    threads: int = 1


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


def run_job(job: Job) -> dict[str, Any]:
    """Execute one job in this process and return its record (never raises)."""
    try:
        limit_native_threads(job.threads)  # before this worker imports numpy and torch
        from clbench.config import config_from_canonical, resolve
        from clbench.harness import execute

        host = _host_for(job.plugins)
        resolved = resolve(config_from_canonical(job.canonical), host.registry)
        if resolved.run_id != job.run_id:
            return failed_record(job, f"config resolves to run id {resolved.run_id} here, not {job.run_id}: "
                                      "plugin versions differ between driver and worker?")
        record = execute(resolved, host, results=None, threads=job.threads).record
        # plain JSON types only: unpickling a torch or numpy object would make the driver import
        # that library (seconds of CPU taken from the workers), and records are JSON anyway
        return json.loads(json.dumps(record, allow_nan=True))
    except BaseException as exc:  # noqa: BLE001 - a job must come back as a record
        return failed_record(job, f"{type(exc).__name__}: {exc}".strip())


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
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(WORKER_PRELOAD)
    return context


def run_local(jobs: list[Job], workers: int) -> Iterator[dict[str, Any]]:
    """Run jobs in a pool of ``workers`` processes (no state shared with the driver: see
    :func:`worker_context`); yield records as they complete. ``workers=1`` still uses one worker
    process, for isolation."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pending_jobs = list(jobs)
    context = worker_context(max((job.threads for job in jobs), default=1))
    while pending_jobs:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {pool.submit(run_job, job): job for job in pending_jobs}
            pending_jobs = []
            broken = False
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    job = futures.pop(future)
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        broken = True
                        pending_jobs.append(job)
                    except Exception as exc:  # noqa: BLE001
                        yield failed_record(job, f"{type(exc).__name__}: {exc}")
            if broken:
                # a worker died (e.g. killed or out of memory): the jobs it may have held cannot be
                # told apart, so each unfinished one is retried once alone before being failed.
                for job in pending_jobs:
                    yield from _run_alone(job, context)
                pending_jobs = []


def _run_alone(job: Job, context: Any) -> Iterator[dict[str, Any]]:
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        try:
            yield pool.submit(run_job, job).result()
        except BrokenProcessPool:
            yield failed_record(job, "the worker process died (killed, or out of memory)")


def run_ray(jobs: list[Job], workers: int, address: str | None) -> Iterator[dict[str, Any]]:
    """Run jobs as Ray tasks (1 CPU each) on the cluster at ``address``, or on a local Ray
    started for the sweep with ``workers`` CPUs; yield records as they complete."""
    import ray

    started_here = False
    if not ray.is_initialized():
        env = {"env_vars": {name: "1" for name in NATIVE_THREAD_VARIABLES}}
        if address:
            ray.init(address=address, include_dashboard=False, runtime_env=env, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, runtime_env=env, log_to_driver=False)
            started_here = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(run_job)
        refs = {remote.remote(job): job for job in jobs}
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                job = refs.pop(ref)
                try:
                    yield ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - e.g. the worker died
                    yield failed_record(job, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    finally:
        if started_here:
            ray.shutdown()


def executor(name: str) -> Callable[..., Iterator[dict[str, Any]]]:
    """The executor function of ``name`` (local or ray)."""
    return {"local": run_local, "ray": run_ray}[name]


def default_workers() -> int:
    """One worker per CPU core."""
    return max(1, os.cpu_count() or 1)
