"""What the commands share: option decorators, the plugin host, the results folder check and the
run summary printed by ``run`` and ``show``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from clbench.errors import UserError
from clbench.registry import KIND_TABLE
from clbench.text import printable


def plugin_option(f: Any) -> Any:
    """``--plugin MODULE`` (repeatable): import MODULE as a plugin for this command."""
    return click.option(
        "--plugin",
        "plugins",
        multiple=True,
        metavar="MODULE",
        help="Import MODULE as a plugin for this command (repeatable).",
    )(f)


def component_options(crossed: bool) -> Any:
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


def device_option(f: Any) -> Any:
    """``--device``: where runs compute (``train.device``); not part of the run id."""
    return click.option(
        "--device",
        metavar="DEVICE",
        default=None,
        help="auto (CUDA, else MPS, else CPU; the default), cpu, cuda, cuda:N or mps. Not part of the run id.",
    )(f)


def log_option(f: Any) -> Any:
    """``--log A,B`` (repeatable): the experiment trackers runs log to (``train.log``)."""
    return click.option(
        "--log",
        "logs",
        multiple=True,
        metavar="A,B",
        help="Log runs to these trackers (tensorboard, mlflow, wandb; see 'clbench list loggers'); repeatable; "
        "replaces a config file's train.log; 'none' logs nowhere. Not part of the run id.",
    )(f)


def apply_logs(train: dict[str, Any], logs: tuple[str, ...]) -> None:
    """Set ``train["log"]`` from ``--log`` values (comma-separated, repeatable; ``none`` = no
    logger); nothing when the flag was not given."""
    if not logs:
        return
    names = [n.strip() for value in logs for n in value.split(",") if n.strip()]
    train["log"] = [n for n in names if n != "none"]


def results_option(help_text: str) -> Any:
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


def plugin_host(ctx: click.Context, extra: tuple[str, ...] = ()) -> Any:
    """The plugin host for this command: installed plugins plus those named with ``--plugin``
    (on ``clbench`` itself and on the command, ``extra``)."""
    from clbench.plugins import make_plugin_host

    root = ctx.find_root().params.get("plugins") or ()
    return make_plugin_host(tuple(root) + tuple(extra))


def check_results_dir(results: str) -> None:
    """One line if ``results`` (or its ``runs`` folder) exists as a file."""
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


def print_summary(record: dict[str, Any], path: Path | None, host: Any = None) -> None:
    """The lines ``run`` and ``show`` print for a record: a header (id, status, time, seed, label,
    composition), the options that differ from their defaults (the registry of ``host``, a
    :class:`clbench.plugins.PluginHost`, knows them), the metrics (with the adapted ones beside
    them), the lines plugins add (hook ``clbench_summary_lines``), hook errors, the path."""
    from clbench.describe import composition, describe_options, non_default_options

    cfg = record["config"]
    label = f"  {printable(record['label'])!r}" if record.get("label") else ""
    click.echo(
        f"run {record['run_id']}  {printable(record['status'])}  {_fmt(record.get('duration_s'))} s  "
        f"seed={record['seed']}{label}  {printable(composition(cfg))}"
    )
    registry = None
    if host is not None:
        try:
            registry = host.registry
        except UserError:  # two plugins register one name: the defaults are unknown, the record is not
            registry = None
    click.echo(f"options: {printable(describe_options(non_default_options(cfg, registry)))}")
    if record["status"] == "ok":
        # after test-time adaptation (meta.eval_adapt_steps): a column beside the plain values
        adapted = record.get("adapted_metrics") if isinstance(record.get("adapted_metrics"), dict) else None
        width = max(len(k) for k in record["metrics"])
        click.echo(f"{'metric'.ljust(width)}  " + ("value    adapted" if adapted else "value"))
        for key, value in record["metrics"].items():
            text = f"{_fmt(value):<8} {_fmt(adapted.get(key))}" if adapted else _fmt(value)
            click.echo(f"{printable(key).ljust(width)}  {text}")
    if host is not None:
        notes: list[str] = []
        for _plugin, lines in host.collect("clbench_summary_lines", notes, record=record):
            for line in lines or []:
                click.echo(printable(line))
        for note in notes:
            click.echo(f"warning: {printable(note)}", err=True)
    for err in record.get("hook_errors") or []:
        if isinstance(err, dict):
            click.echo(
                f"warning: plugin {printable(err.get('plugin'))!r} failed in {printable(err.get('hook'))}: "
                f"{printable(err.get('error'))}",
                err=True,
            )
    if path is not None:
        click.echo(f"record: {printable(path)}")
