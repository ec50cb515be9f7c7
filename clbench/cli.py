"""The ``clbench`` command line (Click). User errors print one line and exit with status 2.

Nothing here imports torch or Avalanche at module level: ``clbench --help``, ``list`` and
``plugins`` stay light; ``run`` imports torch when it starts a run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from clbench import __version__
from clbench.config import MAX_SEED, SET_SECTIONS, RunConfig, load_toml, resolve, sections_in_use
from clbench.errors import RunFailed, UserError
from clbench.interrupts import Interrupted, install_handlers
from clbench.registry import KIND_TABLE, KINDS, SECTION_OF_KIND
from clbench.text import printable


def _plugin_option(f: Any) -> Any:
    return click.option(
        "--plugin",
        "plugins",
        multiple=True,
        metavar="MODULE",
        help="Import MODULE as a plugin for this command (repeatable).",
    )(f)


def _component_options(crossed: bool) -> Any:
    """One ``--<section>`` flag per component kind (:data:`clbench.registry.KIND_TABLE`): a name for
    ``run``, comma-separated names to cross for ``sweep`` (``crossed``)."""

    def decorate(f: Any) -> Any:
        for kind in reversed(KIND_TABLE):
            if crossed:
                text = f"{kind.help.rstrip('.')}: names to cross, comma-separated."
                if kind.default is None:
                    text += " 'none' = without one."
            else:
                text = kind.help + (f" Default: {kind.default}." if kind.default else "")
            metavar = "A,B" if crossed else "NAME"
            f = click.option(f"--{kind.section}", kind.section, metavar=metavar, help=text)(f)
        return f

    return decorate


def _device_option(f: Any) -> Any:
    """``--device``: where runs compute (``train.device``); not part of the run id."""
    return click.option(
        "--device",
        metavar="DEVICE",
        default=None,
        help="auto (CUDA, else MPS, else CPU; the default), cpu, cuda, cuda:N or mps. Not part of the run id.",
    )(f)


def _results_option(help_text: str) -> Any:
    """``--results DIR``: a folder path; an empty path is an error, not the current folder."""

    def check(ctx: click.Context, param: Any, value: str) -> str:
        if not value or not value.strip():
            raise click.BadParameter("must be a folder path, not empty")
        return value

    return click.option(
        "--results",
        default="results",
        show_default=True,
        type=click.Path(file_okay=False),
        callback=check,
        help=help_text,
    )


def _host(ctx: click.Context, extra: tuple[str, ...] = ()) -> Any:
    from clbench.plugins import make_plugin_host

    root = ctx.find_root().params.get("plugins") or ()
    return make_plugin_host(tuple(root) + tuple(extra))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="clbench")
@_plugin_option
def cli(plugins: tuple[str, ...]) -> None:
    """Compare continual learners on shared task streams and metrics.

    \b
    clbench run --model dnc --meta maml --replay prioritized
    clbench list models
    clbench show RUN_ID
    """


@cli.command()
@_component_options(crossed=False)
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
@_results_option("Results folder; the record goes to RESULTS/runs/RUN_ID.json.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="torch threads for this run.")
@_device_option
@click.option(
    "--restart", is_flag=True, help="Ignore (and remove) the run's checkpoint: start again from the first task."
)
@click.option(
    "--keep-checkpoints", is_flag=True, help="Keep the checkpoint in RESULTS/checkpoints after the run completes."
)
@click.option("--no-checkpoints", is_flag=True, help="Save no checkpoints (an interrupted run then starts again).")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON instead of a table.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@_plugin_option
@click.pass_context
def run(
    ctx: click.Context,
    seed: int | None,
    sets: tuple[str, ...],
    config_file: str | None,
    results: str,
    threads: int,
    device: str | None,
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
    _check_results_dir(results)
    host = _host(ctx, plugins)
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
    try:
        from clbench.checkpoints import checkpoints_dir

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
    record = result.record
    if as_json:
        from clbench.records import dumps

        click.echo(dumps(record))
    else:
        _print_summary(record, result.path)
    if result.write_failed:
        raise RunFailed(f"run {record['run_id']} finished ({record['status']}) but {result.note}")
    if result.note:
        click.echo(f"clbench: {printable(result.note)}", err=True)
    if record["status"] != "ok":
        raise RunFailed(f"run {record['run_id']} failed: {printable(record['error'])}")


def _check_results_dir(results: str) -> None:
    path = Path(results)
    if path.exists() and not path.is_dir():
        raise UserError(f"--results {printable(results)!r} is a file; it must be a folder")
    runs = path / "runs"
    if runs.exists() and not runs.is_dir():
        raise UserError(f"{printable(runs)!r} is a file; clbench keeps run records in that folder")


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return printable(value)


def _print_summary(record: dict[str, Any], path: Path | None) -> None:
    cfg = record["config"]
    parts = [f"{s}={printable(cfg[s]['name'])}" for s in sections_in_use(cfg)]
    click.echo(
        f"run {record['run_id']}  {printable(record['status'])}  {_fmt(record.get('duration_s'))} s  "
        f"seed={record['seed']}  {' '.join(parts)}"
    )
    if record["status"] == "ok":
        # after test-time adaptation (meta.eval_adapt_steps): a column beside the plain values
        adapted = record.get("adapted_metrics") if isinstance(record.get("adapted_metrics"), dict) else None
        width = max(len(k) for k in record["metrics"])
        click.echo(f"{'metric'.ljust(width)}  " + ("value    adapted" if adapted else "value"))
        for key, value in record["metrics"].items():
            text = f"{_fmt(value):<8} {_fmt(adapted.get(key))}" if adapted else _fmt(value)
            click.echo(f"{printable(key).ljust(width)}  {text}")
    for err in record.get("hook_errors") or []:
        if isinstance(err, dict):
            click.echo(
                f"warning: plugin {printable(err.get('plugin'))!r} failed in {printable(err.get('hook'))}: "
                f"{printable(err.get('error'))}",
                err=True,
            )
    if path is not None:
        click.echo(f"record: {printable(path)}")


@cli.command()
@_component_options(crossed=True)
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
@_results_option("Results folder; complete records there are skipped (resume).")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="torch threads per run.")
@_device_option
@click.option(
    "--gpus-per-run",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="GPUs each run asks Ray for (fractions share one GPU); --executor ray only.",
)
@click.option("--dry-run", is_flag=True, help="Print the planned runs and exit.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@_plugin_option
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
    if gpus_per_run and executor_name != "ray":
        raise UserError("--gpus-per-run asks Ray for GPUs: use it with --executor ray")
    if executor_name == "ray" and importlib_util_find("ray") is None:
        raise UserError("--executor ray needs Ray, which is not installed; install with: pip install 'clbench[ray]'")
    _check_results_dir(results)
    host = _host(ctx, plugins)
    plan = spec.expand(host.registry)
    if dry_run:
        for config in plan.configs:
            c = config.canonical()
            parts = [f"{s}={printable(c[s]['name'])}" for s in sections_in_use(c)]
            click.echo(f"{config.run_id}  seed={config.seed}  {' '.join(parts)}")
        click.echo(f"{len(plan.configs)} runs planned")
        return
    _check_devices(plan, executor_name, ray_address)
    _run_sweep_cli(plan, results, executor_name, workers, ray_address, plugins, ctx, threads, quiet, gpus_per_run)


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
            click.echo(f"  {record['run_id']}  {printable(record['status'])}", err=True)

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
        click.echo(f"  failed {run_id}: {printable(error)}")
    for run_id, note in summary.not_written.items():
        click.echo(f"  {run_id}: {printable(note)}", err=True)
    if summary.failed:
        raise RunFailed(f"{len(summary.failed)} of {len(plan.configs)} runs failed")


@cli.command("list")
@click.argument("kind", required=False, type=click.Choice([*KINDS, "train"]))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_plugin_option
@click.pass_context
def list_cmd(ctx: click.Context, kind: str | None, as_json: bool, plugins: tuple[str, ...]) -> None:
    """List registered components with descriptions and options, and the training settings
    (KIND ``train``: the options of ``--set train.KEY=VALUE`` and a config file's [train] table)."""
    from clbench.config import TrainConfig
    from clbench.options import describe_fields

    registry = _host(ctx, plugins).registry
    kinds = [kind] if kind and kind != "train" else [] if kind else list(KINDS)
    data: dict[str, list[dict[str, Any]]] = {}
    if kind in (None, "train"):  # shaped as one component, so that readers of --json need no special case
        data["train"] = [
            {
                "name": "train",
                "description": "training settings shared by every learner",
                "plugin": "core",
                "available": True,
                "unavailable_reason": None,
                "options": describe_fields(TrainConfig),
            }
        ]
    for k in kinds:
        data[k] = []
        for comp in registry.components(k):
            data[k].append(
                {
                    "name": comp.name,
                    "description": comp.description,
                    "plugin": comp.plugin,
                    "available": comp.available,
                    "unavailable_reason": comp.unavailable_reason(),
                    "options": describe_fields(comp.options),
                }
            )
    if as_json:
        click.echo(json.dumps(data, indent=1, default=str))
        return
    width = max([len(item["name"]) for k in kinds for item in data[k]] + [12])
    for k in kinds:
        click.echo(f"{k} (--{SECTION_OF_KIND[k]} NAME):")
        if not data[k]:
            click.echo("  (none registered)")
        for item in data[k]:
            click.echo(
                f"  {printable(item['name']):<{width}} {printable(item['description'])}  [{printable(item['plugin'])}]"
            )
            if not item["available"]:
                click.echo(f"  {'':<{width}} unavailable: {printable(item['unavailable_reason'])}")
            for opt in item["options"]:
                default = printable(json.dumps(opt["default"], default=str))
                click.echo(
                    f"  {'':<{width}}   {SECTION_OF_KIND[k]}.{printable(opt['name'])}={default}  "
                    f"({printable(opt['type'])}) {printable(opt['description'])}"
                )
        click.echo("")
    if "train" in data:
        click.echo("train settings (--set train.KEY=VALUE; a config file's [train] table):")
        for opt in data["train"][0]["options"]:
            default = printable(json.dumps(opt["default"], default=str))
            click.echo(
                f"  train.{printable(opt['name'])}={default}  ({printable(opt['type'])}) {printable(opt['description'])}"
            )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_plugin_option
@click.pass_context
def plugins(ctx: click.Context, as_json: bool, plugins: tuple[str, ...]) -> None:
    """List plugins: source, version, hooks, and load errors."""
    host = _host(ctx, plugins)
    host.build_registry(lenient=True)  # registration errors and name conflicts mark plugins as failed
    if as_json:
        click.echo(json.dumps([i.to_dict() for i in host.infos], indent=1))  # conflicts: in each plugin's error
        return
    for info in host.infos:
        version = printable(info.version or "-")
        click.echo(
            f"{printable(info.name):<34} {info.status:<8} {version:<8} {info.source:<12} {printable(info.module)}"
        )
        if info.error:
            click.echo(f"{'':<34} error: {printable(info.error)}")
        if info.essential:
            click.echo(f"{'':<34} essential: provides the defaults; cannot be disabled")
        if info.hooks:
            click.echo(f"{'':<34} hooks: {', '.join(info.hooks)}")
    for conflict in host.conflicts:
        click.echo(f"conflict: {conflict}")


@cli.command()
@click.argument("run_id")
@_results_option("Results folder to look in.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole record as JSON.")
def show(run_id: str, results: str, as_json: bool) -> None:
    """Show the record of RUN_ID (a unique prefix is enough)."""
    from clbench.records import dumps, find_record, load_record

    path = find_record(results, run_id)
    record, reason = load_record(path)
    if record is None:
        raise UserError(f"{printable(path)!r} is not a usable clbench record: {printable(reason)}")
    if as_json:
        click.echo(dumps(record))
        return
    _print_summary(record, path)
    if record.get("error"):
        click.echo(f"error: {printable(record['error'])}")
    matrix = record.get("accuracy_matrix") or []
    if matrix:
        click.echo("accuracy matrix (row i: after task i; column j: task j):")
        click.echo("init  " + " ".join(_cell(a) for a in record.get("init_accuracy", [])))
        for i, row in enumerate(matrix):
            click.echo(f"{i:>4}  " + " ".join(_cell(a) for a in row))


def _cell(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else " n/a"


def _add_report_command() -> None:
    from clbench.report.command import report_command

    cli.add_command(report_command)


_add_report_command()
#: The commands clbench itself defines: plugins cannot replace them.
BUILTIN_COMMANDS = frozenset(cli.commands)


def plugin_modules_in(argv: list[str]) -> tuple[str, ...]:
    """The modules named with ``--plugin MODULE`` or ``--plugin=MODULE`` anywhere in ``argv``, so
    that their commands exist before the command line is parsed."""
    found = []
    for i, arg in enumerate(argv):
        if arg == "--plugin" and i + 1 < len(argv):
            found.append(argv[i + 1])
        elif arg.startswith("--plugin="):
            found.append(arg.split("=", 1)[1])
    return tuple(found)


def add_plugin_commands(argv: list[str]) -> None:
    """Add the commands plugins bring (hook ``clbench_register_commands``) to :data:`cli`. Each
    plugin fills a group of its own; a command whose name is taken (a built-in, or another
    plugin's) is left out with a warning."""
    from clbench.plugins import make_plugin_host

    for name in [n for n in cli.commands if n not in BUILTIN_COMMANDS]:  # from an earlier main() in this process
        del cli.commands[name]
    host = make_plugin_host(plugin_modules_in(argv))
    notes: list[str] = []
    for plugin, commands in host.plugin_commands(notes):
        for name, command in commands.items():
            if name in cli.commands:
                owner = "clbench" if name in BUILTIN_COMMANDS else "another plugin"
                notes.append(f"plugin {plugin!r}: command {name!r} is taken by {owner}; left out")
                continue
            cli.add_command(command, name)
    for note in notes:
        click.echo(f"clbench: warning: {printable(note)}", err=True)


def _exit_now(code: int) -> None:
    """Leave at once after an interrupt: run the exit handlers (they stop what this process
    started, such as a local Ray cluster) but skip the interpreter's teardown of torch's modules,
    which takes seconds on a busy machine."""
    import atexit
    import os

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed pipe
            pass
    os._exit(code)


def _say_interrupted(exc: Interrupted) -> None:
    """One line: the signal, and what the interrupted run kept (when it says)."""
    note = f": {printable(exc.note)}" if exc.note else ""
    click.echo(f"clbench: interrupted ({exc}){note}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI; user errors -> one line on stderr and exit status 2."""
    install_handlers()  # Ctrl-C and SIGTERM raise Interrupted; a plugin's KeyboardInterrupt does not stop a run
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        add_plugin_commands(args)
        rv = cli.main(args=args, prog_name="clbench", standalone_mode=False)
    except Interrupted as exc:
        _say_interrupted(exc)
        _exit_now(exc.exit_code)
    except click.exceptions.Abort as exc:  # click turns KeyboardInterrupt (our Interrupted too) into Abort
        cause = exc.__context__
        if isinstance(cause, Interrupted):
            _say_interrupted(cause)
            _exit_now(cause.exit_code)
        click.echo("clbench: aborted", err=True)
        return 130
    except click.exceptions.UsageError as exc:
        msg = printable(" ".join(exc.format_message().split()))
        hint = (
            f" (see 'clbench {exc.ctx.info_name} --help')" if exc.ctx and exc.ctx.parent else " (see 'clbench --help')"
        )
        click.echo(f"clbench: error: {msg}{hint}", err=True)
        return 2
    except click.exceptions.ClickException as exc:
        click.echo(f"clbench: error: {printable(exc.format_message())}", err=True)
        return exc.exit_code
    except UserError as exc:
        click.echo(f"clbench: error: {printable(exc)}", err=True)
        return 2
    except RunFailed as exc:
        click.echo(f"clbench: {printable(exc)}", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("clbench: interrupted", err=True)
        return 130
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
