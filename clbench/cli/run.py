"""``clbench run``: one configuration, with its summary."""

from __future__ import annotations

import sys

import click

from clbench.cli.common import (
    apply_logs,
    check_results_dir,
    component_options,
    device_option,
    log_option,
    plugin_host,
    plugin_option,
    print_summary,
    results_option,
)
from clbench.config import MAX_SEED, SET_SECTIONS, RunConfig, load_toml, resolve
from clbench.errors import RunFailed
from clbench.text import printable


@click.command()
@component_options(crossed=False)
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=None,
    help="Run seed (model init, data order, stream), 0 to 2**32-1. Default: 0.",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help=f"Set an option; SECTION is one of {', '.join(SET_SECTIONS)}.",
)
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="TOML run config; flags override it.")
@results_option("Results folder; the record goes to RESULTS/runs/RUN_ID.json.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="torch threads for this run.")
@device_option
@log_option
@click.option(
    "--restart", is_flag=True, help="Ignore (and remove) the run's checkpoint: start again from the first task."
)
@click.option(
    "--keep-checkpoints", is_flag=True, help="Keep the checkpoint in RESULTS/checkpoints after the run completes."
)
@click.option("--no-checkpoints", is_flag=True, help="Save no checkpoints (an interrupted run then starts again).")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON instead of a table.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@plugin_option
@click.pass_context
def run(
    ctx: click.Context,
    seed: int | None,
    sets: tuple[str, ...],
    config_file: str | None,
    results: str,
    threads: int,
    device: str | None,
    logs: tuple[str, ...],
    restart: bool,
    keep_checkpoints: bool,
    no_checkpoints: bool,
    as_json: bool,
    quiet: bool,
    plugins: tuple[str, ...],
    **names: str | None,
) -> None:
    """Run one configuration, print its metrics and write its record.

    After each task the run saves a checkpoint in RESULTS/checkpoints; if it is interrupted (Ctrl-C,
    SIGTERM, a crash), the same command resumes from the last completed task."""
    config = load_toml(config_file) if config_file else RunConfig()
    for section, name in names.items():  # one flag per component kind
        config.set_name(section, name)
    if seed is not None:
        config.seed = seed
    for assignment in sets:
        config.apply_set(assignment)
    if device is not None:
        config.train["device"] = device
    apply_logs(config.train, logs)
    check_results_dir(results)
    host = plugin_host(ctx, plugins)
    resolved = resolve(config, host.registry)
    from clbench.records import check_writable

    check_writable(results)  # before training, not after it

    from clbench.executors import limit_native_threads

    limit_native_threads(threads)  # before the harness imports numpy and torch
    from clbench.harness import execute

    progress = None
    if not quiet and not as_json and sys.stderr.isatty():
        from clbench.progress import ProgressPlugin

        progress = ProgressPlugin()
        host.add_observer(progress, name="clbench.progress")
    from clbench.checkpoints import checkpoints_dir, remove_if_empty

    try:
        result = execute(
            resolved,
            host,
            results=results,
            threads=threads,
            checkpoints=None if no_checkpoints else checkpoints_dir(results),
            restart=restart,
            keep_checkpoints=keep_checkpoints,
            on_note=lambda line: click.echo(f"clbench: {printable(line)}", err=True),
        )
    finally:
        if progress is not None:
            progress.close()
        if not no_checkpoints:
            remove_if_empty(checkpoints_dir(results))
    record = result.record
    if as_json:
        from clbench.records import dumps

        click.echo(dumps(record))
    else:
        print_summary(record, result.path, host)
    if result.write_failed:
        raise RunFailed(f"run {record['run_id']} finished ({record['status']}) but {result.note}")
    if result.note:
        click.echo(f"clbench: {printable(result.note)}", err=True)
    if record["status"] != "ok":
        raise RunFailed(f"run {record['run_id']} failed: {printable(record['error'])}")
