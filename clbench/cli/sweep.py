"""``clbench sweep``: a grid of configurations times seeds, locally or on Ray."""

from __future__ import annotations

import sys
from typing import Any

import click

from clbench.cli.common import (
    apply_logs,
    check_results_dir,
    component_options,
    device_option,
    log_option,
    plugin_host,
    plugin_option,
    results_option,
)
from clbench.config import RunConfig
from clbench.describe import describe_plan
from clbench.errors import RunFailed, UserError
from clbench.text import printable


@click.command()
@component_options(crossed=True)
@click.option("--seeds", metavar="SEEDS", help="Seeds, e.g. 0-4 or 0,3,7 (default: the config's seed).")
@click.option("--set", "sets", multiple=True, metavar="SECTION.KEY=VALUE", help="Set an option for every run.")
@click.option(
    "--grid", "grids", multiple=True, metavar="SECTION.KEY=V1,V2", help="Cross the values of an option (repeatable)."
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="TOML experiment file: run-config layout + seeds, [grid], [[variants]].",
)
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Parallel runs. Default: CPU cores.")
@click.option(
    "--executor",
    "executor_name",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: a process pool; ray: Ray tasks.",
)
@click.option("--ray-address", metavar="ADDR", help="Existing Ray cluster (default: start a local one).")
@results_option("Results folder; complete records there are skipped (resume).")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="torch threads per run.")
@device_option
@log_option
@click.option(
    "--gpus-per-run",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="GPUs each run asks Ray for (fractions share one GPU); --executor ray only.",
)
@click.option("--dry-run", is_flag=True, help="Print the planned runs and exit.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@plugin_option
@click.pass_context
def sweep(
    ctx: click.Context,
    seeds: str | None,
    sets: tuple[str, ...],
    grids: tuple[str, ...],
    config_file: str | None,
    workers: int | None,
    executor_name: str,
    ray_address: str | None,
    results: str,
    threads: int,
    device: str | None,
    logs: tuple[str, ...],
    gpus_per_run: float,
    dry_run: bool,
    quiet: bool,
    plugins: tuple[str, ...],
    **names: str | None,
) -> None:
    """Run a grid of configurations times seeds; resumable (complete records are skipped, and a run
    that was stopped goes on from its last checkpoint)."""
    from clbench.sweep import spec_from_cli, spec_from_toml

    if config_file:
        spec = spec_from_toml(config_file, seeds_override=seeds)
        extra = spec_from_cli(spec.base, names, grids, None)
        spec.grid.update(extra.grid)
    else:
        spec = spec_from_cli(RunConfig(), names, grids, seeds)
    for assignment in sets:
        spec.base.apply_set(assignment)
    if device is not None:
        spec.base.train["device"] = device
    apply_logs(spec.base.train, logs)
    if gpus_per_run and executor_name != "ray":
        raise UserError("--gpus-per-run asks Ray for GPUs: use it with --executor ray")
    if executor_name == "ray" and importlib_util_find("ray") is None:
        raise UserError("--executor ray needs Ray, which is not installed; install with: pip install 'clbench[ray]'")
    check_results_dir(results)
    host = plugin_host(ctx, plugins)
    plan = spec.expand(host.registry)
    shared, lines = describe_plan([c.canonical() for c in plan.configs], host.registry)
    described = {c.run_id: _run_line(plan, c, line) for c, line in zip(plan.configs, lines)}
    if dry_run:  # the shared options on stderr: stdout stays one line per run (its id first), then the count
        click.echo(f"sweep {printable(plan.name)}: every run: {printable(shared)}", err=True)
        states = {config.run_id: run_state(results, config.run_id) for config in plan.configs}
        for config in plan.configs:
            click.echo(f"{config.run_id}  {states[config.run_id]:<6}  {described[config.run_id]}")
        click.echo(plan_count(list(states.values())))
        return
    _check_devices(plan, executor_name, ray_address)
    _run_sweep_cli(
        plan,
        results,
        executor_name,
        workers,
        ray_address,
        plugins,
        ctx,
        threads,
        quiet,
        gpus_per_run,
        described,
        f"sweep {printable(plan.name)}: every run: {printable(shared)}",
    )


#: What ``sweep --dry-run`` says of each planned run, from what the results folder holds.
RUN_STATES = {
    "done": "a complete record exists: skipped",
    "resume": "a checkpoint exists: goes on from its last task",
    "rerun": "an earlier record is failed, interrupted or unusable: runs again",
    "new": "nothing yet",
}


def run_state(results: str, run_id: str) -> str:
    """``done``, ``resume``, ``rerun`` or ``new`` (:data:`RUN_STATES`) for ``run_id`` in ``results``."""
    from clbench.checkpoints import checkpoint_path, checkpoints_dir
    from clbench.records import is_complete, record_path

    path = record_path(results, run_id)
    if is_complete(path):
        return "done"
    if checkpoint_path(checkpoints_dir(results), run_id).is_file():
        return "resume"
    return "rerun" if path.exists() else "new"


def plan_count(states: list[str]) -> str:
    """The dry run's last line: ``N runs planned``, and how many are done, resume or run again
    when the results folder already holds some of them."""
    line = f"{len(states)} runs planned"
    counts = {s: states.count(s) for s in RUN_STATES if states.count(s)}
    if set(counts) <= {"new"}:
        return line
    left = len(states) - counts.get("done", 0)
    parts = [f"{counts.get('done', 0)} done", f"{left} to run"]
    detail = [
        f"{counts[s]} {'resume from a checkpoint' if s == 'resume' else 'run again'}"
        for s in ("resume", "rerun")
        if s in counts
    ]
    return f"{line}: {', '.join(parts)}" + (f" ({', '.join(detail)})" if detail else "")


def _run_line(plan: Any, config: Any, line: str) -> str:
    """A run as the sweep's console shows it: seed, variant label, composition, its own options."""
    label = plan.labels.get(config.run_id)
    return printable(f"seed={config.seed}  {label + '  ' if label else ''}{line}")


def _check_devices(plan: Any, executor_name: str, ray_address: str | None) -> None:
    """Every device the plan names must exist here, before any run starts (one line otherwise).
    Not checked for a remote Ray cluster: its nodes, not this machine, run the jobs."""
    if executor_name == "ray" and ray_address:
        return
    wanted = {c.train.device for c in plan.configs} - {"auto", "cpu"}
    if wanted:
        from clbench.devices import resolve_device

        for spec in sorted(wanted):
            resolve_device(spec)


def importlib_util_find(name: str) -> Any:
    """``importlib.util.find_spec`` that answers None instead of raising."""
    import importlib.util

    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def _run_sweep_cli(
    plan: Any,
    results: str,
    executor_name: str,
    workers: int | None,
    ray_address: str | None,
    plugins: tuple[str, ...],
    ctx: click.Context,
    threads: int,
    quiet: bool,
    gpus_per_run: float = 0.0,
    described: dict[str, str] | None = None,
    header: str | None = None,
) -> None:
    import time

    from clbench.executors import default_workers
    from clbench.records import check_writable, is_complete, record_path
    from clbench.sweep import run_sweep

    workers = workers or default_workers()
    todo = sum(1 for rid in plan.run_ids if not is_complete(record_path(results, rid)))
    if todo:
        check_writable(results)
    if executor_name == "ray" and todo:
        from clbench.ray_executor import connect_ray

        if connect_ray(ray_address, workers):  # a bad address or a missing token: one line, before anything else
            import atexit

            import ray

            atexit.register(ray.shutdown)
    if header:  # after every check that may refuse the sweep: an error stays one line
        click.echo(header, err=True)
    click.echo(
        f"sweep: {len(plan.configs)} runs planned, {len(plan.configs) - todo} already complete, "
        f"{todo} to run on {executor_name} with {workers} worker(s)",
        err=True,
    )
    bar = None
    if not quiet and sys.stderr.isatty() and todo:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(
            TextColumn("sweep"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=Console(stderr=True),
            transient=True,
        )
        bar.start()
        bar_task = bar.add_task("", total=todo)

    def on_record(record: dict[str, Any]) -> None:
        if bar is not None:
            bar.update(bar_task, advance=1, description=f"last: {record['run_id']} {record['status']}")
        elif not quiet:
            about = (described or {}).get(record["run_id"], "")
            click.echo(f"  {record['run_id']}  {printable(record['status'])}  {about}".rstrip(), err=True)

    root_plugins = tuple(ctx.find_root().params.get("plugins") or ()) + tuple(plugins)
    t0 = time.perf_counter()
    try:
        summary = run_sweep(
            plan,
            results,
            executor=executor_name,
            workers=workers,
            ray_address=ray_address,
            plugins=root_plugins,
            threads=threads,
            on_record=on_record,
            gpus_per_run=gpus_per_run,
        )
    finally:
        if bar is not None:
            bar.stop()
    elapsed = time.perf_counter() - t0
    if summary.interrupted is not None:
        kept = len(summary.ok) + len(summary.failed)
        click.echo(
            f"sweep interrupted after {elapsed:.1f} s: kept {kept} record(s) written by this sweep "
            f"({len(summary.ok)} ok, {len(summary.failed)} failed); stopped {len(summary.discarded)} run(s) "
            f"in flight{': ' + ', '.join(summary.discarded) if summary.discarded else ''}; "
            f"{len(summary.not_started)} not started. Run the same command to resume (runs in flight go on "
            f"from their last checkpoint in {printable(results)}/checkpoints).",
            err=True,
        )
        raise summary.interrupted
    click.echo(
        f"sweep done in {elapsed:.1f} s: {len(summary.ok)} ok, {len(summary.failed)} failed, "
        f"{len(summary.skipped)} skipped (already complete); records in {printable(results)}/runs"
    )
    for run_id, error in summary.failed.items():
        about = (described or {}).get(run_id)
        click.echo(f"  failed {run_id}{f' ({about})' if about else ''}: {printable(error)}")
    for run_id, note in summary.not_written.items():
        click.echo(f"  {run_id}: {printable(note)}", err=True)
    if summary.failed:
        raise RunFailed(f"{len(summary.failed)} of {len(plan.configs)} runs failed")
