"""``clbench list``, ``plugins`` and ``show``: what is installed, and what a record holds."""

from __future__ import annotations

import json
from typing import Any

import click

from clbench.cli.common import (
    plugin_host,
    plugin_option,
    print_summary,
    results_option,
)
from clbench.errors import UserError
from clbench.registry import KINDS, LOGGERS, SECTION_OF_KIND
from clbench.text import printable


@click.command("list")
@click.argument("kind", required=False, type=click.Choice([*KINDS, LOGGERS, "train"]))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@plugin_option
@click.pass_context
def list_cmd(ctx: click.Context, kind: str | None, as_json: bool, plugins: tuple[str, ...]) -> None:
    """List registered components with descriptions and options, the loggers (experiment trackers
    for ``--log``), and the training settings (KIND ``train``: the options of ``--set
    train.KEY=VALUE`` and a config file's [train] table)."""
    from clbench.config import TrainConfig
    from clbench.options import describe_fields

    registry = plugin_host(ctx, plugins).registry
    kinds = [kind] if kind and kind != "train" else [] if kind else [*KINDS, LOGGERS]
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
        click.echo(f"{k} (--{SECTION_OF_KIND[k]} NAME):" if k in SECTION_OF_KIND else f"{k} (--log A,B):")
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
                    f"  {'':<{width}}   {SECTION_OF_KIND.get(k, k)}.{printable(opt['name'])}={default}  "
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


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@plugin_option
@click.pass_context
def plugins(ctx: click.Context, as_json: bool, plugins: tuple[str, ...]) -> None:
    """List plugins: source, version, hooks, and load errors."""
    host = plugin_host(ctx, plugins)
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


@click.command()
@click.argument("run_id")
@results_option("Results folder to look in.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole record as JSON.")
@click.pass_context
def show(ctx: click.Context, run_id: str, results: str, as_json: bool) -> None:
    """Show the record of RUN_ID (a unique prefix is enough)."""
    from clbench.records import dumps, find_record, load_record

    path = find_record(results, run_id)
    record, reason = load_record(path)
    if record is None:
        raise UserError(f"{printable(path)!r} is not a usable clbench record: {printable(reason)}")
    if as_json:
        click.echo(dumps(record))
        return
    print_summary(record, path, plugin_host(ctx))  # the components' defaults; the plugins' summary lines
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
