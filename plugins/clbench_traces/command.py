"""``clbench traces RUN_ID``, a command the traces plugin adds: memory traces of one run drawn as
heatmaps (slots x steps, per task).

Traces are what the plugin stored in the record's ``extras["memory_traces"]`` (see
:mod:`clbench_traces.plugin`): per task, read and write weightings and usage, each slots x steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from clbench.errors import UserError
from clbench.files import write_bytes_atomic
from clbench.text import printable
from clbench_traces.figures import KEY, trace_tasks

#: What a task's traces may hold, in the order they are drawn.
KINDS = ("read", "write", "usage")


def pick_tasks(available: list[str], wanted: str | None, limit: int = 6) -> list[str]:
    """Task keys to draw: those asked for (``"0,5,19"``), else up to ``limit`` spread evenly."""
    if wanted:
        keys = [k.strip() for k in wanted.split(",") if k.strip()]
        missing = [k for k in keys if k not in available]
        if missing:
            raise UserError(f"no traces for task(s) {', '.join(missing)}; traced tasks: {', '.join(available)}")
        return keys
    if len(available) <= limit:
        return available
    step = (len(available) - 1) / (limit - 1)
    return [available[round(i * step)] for i in range(limit)]


def draw(traces: dict[str, Any], tasks: list[str], out: Path, title: str) -> Path:
    """One row per task, one column per kind (read, write, usage): heatmaps of slots x steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k in KINDS if any(k in traces["tasks"][t] for t in tasks)]
    fig, axes = plt.subplots(len(tasks), len(kinds), figsize=(3.2 * len(kinds), 2.4 * len(tasks)), squeeze=False)
    for r, task in enumerate(tasks):
        for c, kind in enumerate(kinds):
            ax = axes[r][c]
            data = traces["tasks"][task].get(kind)
            if not data:
                ax.axis("off")
                continue
            im = ax.imshow(data, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest")
            ax.set_title(f"task {task}: {kind}", fontsize=9)
            ax.set_xlabel("step", fontsize=8)
            ax.set_ylabel("memory slot", fontsize=8)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return write_bytes_atomic(out, buf.getvalue())


@click.command("traces")
@click.argument("run_id")
@click.option(
    "--results",
    default="results",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Results folder to look in.",
)
@click.option("--out", type=click.Path(dir_okay=False), help="PNG to write. Default: RESULTS/traces_RUN_ID.png.")
@click.option("--tasks", metavar="I,J,...", help="Tasks to draw (default: up to 6, spread over the stream).")
def traces_command(run_id: str, results: str, out: str | None, tasks: str | None) -> None:
    """Draw the memory traces of RUN_ID (run with model.trace_samples > 0) as heatmaps."""
    from clbench.records import find_record, load_record

    path = find_record(results, run_id)
    record, reason = load_record(path)
    if record is None:
        raise UserError(f"{printable(path)!r} is not a usable clbench record: {printable(reason)}")
    extras = record.get("extras")
    traces = extras.get(KEY) if isinstance(extras, dict) else None
    if traces is None:
        raise UserError(
            f"run {record['run_id']} has no memory traces; run a memory model with --set model.trace_samples=4"
        )

    problem = trace_tasks(traces)[1]
    if problem:
        raise UserError(f"the memory traces in {printable(path)!r} are malformed: {printable(problem)}")
    target = Path(out) if out else Path(results) / f"traces_{record['run_id']}.png"
    if target.suffix.lower() != ".png":
        raise UserError(f"--out {str(target)!r} must end in .png")
    keys = pick_tasks(sorted(traces["tasks"], key=int), tasks)
    for key in keys:  # each task drawn must be well formed, not only those a report would pick
        problem = trace_tasks({"tasks": {key: traces["tasks"][key]}})[1]
        if problem:
            raise UserError(f"the memory traces in {printable(path)!r} are malformed: {printable(problem)}")
    model = printable((record["config"].get("model") or {}).get("name", "?"))
    title = (
        f"memory traces of run {record['run_id']} ({model}), after task {printable(traces.get('after_task'))}, "
        f"mean over {printable(traces.get('samples'))} test samples"
    )
    click.echo(printable(draw(traces, keys, target, title)))
