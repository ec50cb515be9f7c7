"""``clbench timeline RUN_ID``: the per-task timeline the plugin's hooks stored in a run's record.

It reads the record file (``RESULTS/runs/RUN_ID.json``, found from a unique prefix of the id) and
prints one row per task, or the timeline as JSON. A user mistake (no such run, a run without a
timeline) raises :class:`clbench.errors.UserError`: clbench prints it as one line and exits with 2.
"""

from __future__ import annotations

import json
from typing import Any

import click

from clbench.errors import UserError
from clbench.text import printable
from clbench_example_hooks.plugin import KEY


def rows(timeline: dict[str, Any]) -> list[list[str]]:
    """The printed table: a header, then one row per task (missing values shown as ``-``)."""

    def cell(value: Any, digits: int) -> str:
        return "-" if not isinstance(value, (int, float)) else f"{value:.{digits}f}"

    out = [["task", "name", "train s", "wall s", "loss first->last epoch", "accuracy", "mean seen"]]
    for entry in timeline.get("tasks", []):
        losses = entry.get("epoch_loss") or []
        curve = f"{losses[0]:.4f} -> {losses[-1]:.4f}" if losses else "-"
        out.append(
            [
                str(entry.get("task", "?")),
                printable(str(entry.get("name", ""))),  # text from a file: control characters made visible
                cell(entry.get("train_s"), 3),
                cell(entry.get("wall_s"), 3),
                curve,
                cell(entry.get("accuracy"), 3),
                cell(entry.get("mean_seen_accuracy"), 3),
            ]
        )
    return out


@click.command("timeline")
@click.argument("run_id")
@click.option(
    "--results", default="results", show_default=True, type=click.Path(file_okay=False), help="Results folder."
)
@click.option("--json", "as_json", is_flag=True, help="Print the timeline as JSON.")
def timeline_command(run_id: str, results: str, as_json: bool) -> None:
    """Print the per-task timeline (times, loss per epoch, accuracies) of RUN_ID."""
    from clbench.records import find_record, load_record

    path = find_record(results, run_id)  # a UserError when there is no such run
    record, reason = load_record(path)
    if record is None:
        raise UserError(f"{printable(str(path))!r} is not a usable clbench record: {printable(str(reason))}")
    extras = record.get("extras")
    timeline = extras.get(KEY) if isinstance(extras, dict) else None
    if not isinstance(timeline, dict):
        raise UserError(f"run {record['run_id']} has no timeline: it ran without the example-hooks plugin")
    if as_json:
        click.echo(json.dumps(timeline, indent=1))
        return
    table = rows(timeline)
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    click.echo(f"run {record['run_id']} ({printable(timeline.get('status', record['status']))})")
    for row in table:
        click.echo("  ".join(text.ljust(width) for text, width in zip(row, widths)).rstrip())
