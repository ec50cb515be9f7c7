"""Running a sweep's jobs as Ray tasks, on a cluster or on a local Ray started for the sweep.

Connecting is checked up front (:func:`connect_ray`): an address that does not answer, a cluster
that wants an authentication token, or no answer within :data:`RAY_CONNECT_TIMEOUT` seconds is a
one-line :class:`~clbench.errors.UserError`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from clbench.executors import NATIVE_THREAD_VARIABLES, Job, Progress, failed_record, run_job

#: Seconds to wait for a Ray cluster to accept the connection before giving up with a clear error.
RAY_CONNECT_TIMEOUT = 30.0


def _ray_host_port(address: str) -> tuple[str, int] | None:
    """``host:port`` of a Ray address (``ray://`` stripped), or None for ``auto``/``local``."""
    text = address.strip()
    if text.startswith("ray://"):
        text = text[len("ray://") :]
    if text in ("auto", "local", "") or ":" not in text:
        return None
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    try:
        return host, int(port)
    except ValueError:
        from clbench.errors import UserError

        raise UserError(f"bad --ray-address {address!r}: expected HOST:PORT, ray://HOST:PORT or auto") from None


def ray_runtime_env() -> dict[str, Any]:
    """The runtime environment of clbench's Ray tasks: native thread pools capped at one thread."""
    return {"env_vars": dict.fromkeys(NATIVE_THREAD_VARIABLES, "1")}


def connect_ray(address: str | None, workers: int, env: dict[str, Any] | None = None) -> bool:
    """Connect to the Ray cluster at ``address`` (or start a local one with ``workers`` CPUs).

    Returns True when this call started a local cluster. An unreachable address, a cluster that
    needs an authentication token, or no answer within :data:`RAY_CONNECT_TIMEOUT` seconds is a
    one-line :class:`UserError` naming the cause.
    """
    import logging
    import socket
    import threading

    import ray

    from clbench.errors import UserError

    if ray.is_initialized():
        return False
    if address:
        target = _ray_host_port(address)
        if target is not None:
            try:
                socket.create_connection(target, timeout=5).close()
            except OSError as exc:
                raise UserError(
                    f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}; "
                    "is it running (ray start --head) and is the address right?"
                ) from None
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "runtime_env": env or ray_runtime_env(),
        "log_to_driver": False,
        "logging_level": logging.ERROR,
    }
    if address:
        kwargs["address"] = address
    else:
        kwargs["num_cpus"] = workers
    outcome: dict[str, BaseException] = {}

    def init() -> None:
        try:
            ray.init(**kwargs)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            outcome["error"] = exc

    where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
    if not address:  # starting a local cluster: Ray's own start-up timeouts apply
        init()
        captured = ""
    else:  # connecting may retry for minutes: give up after RAY_CONNECT_TIMEOUT seconds
        with _captured_stderr() as read_captured:  # Ray's native client logs each retry to stderr
            thread = threading.Thread(target=init, name="clbench-ray-connect", daemon=True)
            thread.start()
            thread.join(RAY_CONNECT_TIMEOUT)
            captured = read_captured()
        if thread.is_alive():
            raise UserError(
                f"could not connect to {where} within {RAY_CONNECT_TIMEOUT:.0f} s; "
                "check that it is running and reachable"
            )
    error = outcome.get("error")
    if error is not None:
        text = " ".join(str(error).split())
        if any(word in (text + captured) for word in ("Unauthenticated", "InvalidAuthToken", "authentication token")):
            raise UserError(
                f"{where} requires authentication: set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) "
                "to the cluster's token, with RAY_AUTH_MODE=token"
            ) from None
        raise UserError(f"cannot connect to {where}: {type(error).__name__}: {text[:200]}") from None
    return not address


@contextlib.contextmanager
def _captured_stderr() -> Iterator[Callable[[], str]]:
    """Send this process's native stderr (file descriptor 2) to a temp file for the block; yields
    a function that returns what was written so far."""
    import sys
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)

        def read() -> str:
            sink.seek(0)
            return sink.read().decode("utf-8", "replace")

        try:
            yield read
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def run_ray(
    jobs: list[Job],
    workers: int,
    address: str | None,
    progress: Progress | None = None,
    gpus_per_run: float = 0.0,
) -> Iterator[dict[str, Any]]:
    """Run jobs as Ray tasks (1 CPU each, and ``gpus_per_run`` GPUs: Ray's ``num_gpus``, fractions
    allowed, so that runs spread over a cluster's GPU nodes) on the cluster at ``address``, or on a
    local Ray started for the sweep with ``workers`` CPUs; yield records as they complete. If the
    driver is interrupted, the tasks still running are cancelled."""
    import ray

    progress = progress if progress is not None else Progress()
    started_here = connect_ray(address, workers)  # False when the caller connected already
    refs: dict[Any, Job] = {}
    try:
        remote = ray.remote(num_cpus=1, num_gpus=gpus_per_run, max_retries=0)(run_job)
        refs = {remote.remote(job): job for job in jobs}
        progress.in_flight = {job.run_id for job in jobs}
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                job = refs.pop(ref)
                progress.in_flight.discard(job.run_id)
                try:
                    yield ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - e.g. the worker died
                    yield failed_record(job, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    except BaseException:
        for ref in refs:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - already finished
                pass
        raise
    finally:
        if started_here:
            ray.shutdown()
